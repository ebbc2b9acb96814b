package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/kguard/kguard/auth"
)

// cmdUsers manages the salted credentials file behind SASL PLAIN and SCRAM.
// Passwords are read from standard input, never from the command line.
func cmdUsers(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: kguard users add|remove|list --file F [NAME]", errUsage)
	}
	sub := args[0]
	fs := newFlags("users "+sub, stderr)
	file := fs.String("file", "users.yaml", "credentials file")
	iters := fs.Int("iterations", 0, "PBKDF2 iterations for add (0: the default, at least 4096)")
	if err := parseFlagsArgs(fs, args[1:]); err != nil {
		return err
	}
	name := fs.Arg(0)
	switch sub {
	case "add":
		if name == "" || fs.NArg() != 1 {
			return fmt.Errorf("%w: kguard users add --file F NAME (password on stdin)", errUsage)
		}
		pw, err := readPassword(stdin)
		if err != nil {
			return err
		}
		if err := auth.AddUser(*file, name, pw, *iters); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s saved in %s (SCRAM-SHA-256, SCRAM-SHA-512; PLAIN checks against them)\n", name, *file)
		return nil
	case "remove":
		if name == "" || fs.NArg() != 1 {
			return fmt.Errorf("%w: kguard users remove --file F NAME", errUsage)
		}
		if err := auth.RemoveUser(*file, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s removed from %s\n", name, *file)
		return nil
	case "list":
		users, err := auth.ListUsers(*file)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tMECHANISMS")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\n", u.Name, strings.Join(u.Mechanisms, ","))
		}
		return tw.Flush()
	}
	return fmt.Errorf("%w: unknown users command %q", errUsage, sub)
}

// readPassword reads one line from stdin (a terminal, a pipe or a file).
func readPassword(stdin io.Reader) (string, error) {
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(os.Stderr, "password (input is not hidden; prefer a pipe): ")
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", fmt.Errorf("%w: empty password on stdin", errUsage)
	}
	return pw, nil
}
