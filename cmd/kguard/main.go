// Command kguard is a Kafka-protocol security and compliance proxy.
//
//	kguard serve --config kguard.yaml   run the proxy
//	kguard demo                         kguard in front of an in-process 3-broker cluster
//	kguard version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// errUsage marks an error in the command line (exit code 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "kguard:", err)
		os.Exit(1)
	}
}

const usage = `usage: kguard <command> [flags]

commands:
  serve --config FILE     run the proxy
  demo                    run kguard in front of an in-process 3-broker Kafka cluster
  users add|remove|list --file F [NAME]
                          manage SASL PLAIN/SCRAM users (salted; password on stdin)
  policy test [DIR]       run the Rego policy tests (non-zero exit on failure)
  policy eval --input F   decide one request (JSON) and print the decision with reasons
  keys init [--dir D] [KEK...]
                          create a local key store, a signing keyset and a subject pepper
  keys rotate --config F KEK...     rotate key-encryption keys (Vault transit or local)
  keys shred --config F SUBJECT     destroy one data subject's key (crypto-shredding)
  keys init-signing --config F      create crypto.signing_keyset (encrypted under the OpenBao
                                    transit key crypto.signing_keyset_kek when set) and its .pub.json
  keys rotate-signing --config F    add a new record-signing key and make it primary
  audit keygen --out F    create the Ed25519 key that signs audit checkpoints
  audit verify ...        check the audit topic's chains, checkpoints and signatures
  compliance report --config F --since S --until U --out DIR [--format html,md]
                          PCI DSS / SOX / GDPR evidence report, signed with the audit key
  compliance verify --pubkey F DIR
                          check a report's signature and re-derive its figures
  version                 print the version`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, usage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "users":
		return cmdUsers(ctx, rest, stdin, stdout, stderr)
	case "policy":
		return cmdPolicy(ctx, rest, stdout, stderr)
	case "keys":
		return cmdKeys(ctx, rest, stdout, stderr)
	case "audit":
		return cmdAudit(ctx, rest, stdout, stderr)
	case "compliance":
		return cmdCompliance(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "kguard", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q\n%s", errUsage, cmd, usage)
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("kguard "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}
