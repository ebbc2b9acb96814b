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

	"github.com/kguard/kguard/policy/review"
)

// errUsage marks an error in the command line (exit code 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := exitCode(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr), os.Stderr)
	stop()
	os.Exit(code)
}

// exitCode reports err on stderr and maps it to the process exit code: 0
// for success and for -h/--help (the flag package has printed the usage),
// 2 for a command-line error, 3 for a policy change with unacknowledged
// breaking changes (policy diff), 1 for any other failure.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, err)
		return 2
	case errors.Is(err, review.ErrBreaking):
		fmt.Fprintln(stderr, "kguard:", err)
		return 3
	default:
		fmt.Fprintln(stderr, "kguard:", err)
		return 1
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
  policy diff --base B --head H --replay topic|FILE [--ack F] [--format markdown|json|text]
                          replay recorded decisions under two policies; exit 3 on unacknowledged
                          breaking changes (docs/policy-review.md)
  keys init [--dir D] [KEK...]
                          create a local key store, a signing keyset and a subject pepper
  keys rotate --config F KEK...     rotate key-encryption keys (Vault transit or local)
  keys shred --config F SUBJECT     destroy one data subject's key (crypto-shredding)
  keys init-signing --config F      create crypto.signing_keyset (encrypted under the OpenBao
                                    transit key crypto.signing_keyset_kek when set) and its .pub.json,
                                    or the ed25519 transit key crypto.signing_transit_key
  keys rotate-signing --config F    add a new record-signing key and make it primary (or rotate
                                    the transit signing key)
  keys trust add --config F (--keyset PUB.json INSTANCE | --transit KEY)
                          trust another instance's public keys (crypto.trust.file)
  keys trust remove --config F [--at TIME] ID   revoke an instance or one key id from TIME (now)
  keys trust list --config F                    key id, source, added, revoked
  audit keygen --out F    create the Ed25519 key that signs audit checkpoints
  audit verify ...        check the audit topic's chains, checkpoints and signatures
  audit export --out F [--since T --until T] ...
                          export events, verifying the trail while reading
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
	case "users", "policy", "keys", "audit":
		// `kguard keys --help`: the command groups print the overall usage,
		// which lists their subcommands.
		if len(rest) > 0 && isHelp(rest[0]) {
			fmt.Fprintln(stdout, usage)
			return nil
		}
	}
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
	}
	if isHelp(cmd) {
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

func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

// parseFlagsArgs parses args into fs and allows positional arguments. A
// request for help comes back as flag.ErrHelp (exit code 0), every other
// parse error as a usage error.
func parseFlagsArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return nil
}

// parseFlags is parseFlagsArgs for commands that take no positional
// arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlagsArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}
