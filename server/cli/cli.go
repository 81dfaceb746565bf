// Package cli holds the operator commands of the jetsocket binary (users, secrets, token,
// config check) and decides whether a command line names one of them or asks the server
// to run. Every command takes its input and output as arguments, so tests run them
// in-process with piped stdin.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// IO is what a command reads and writes: the environment, standard streams.
type IO struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// ServeFunc runs the server with the given arguments until ctx is cancelled.
type ServeFunc func(ctx context.Context, args []string) error

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // the command ran and failed (bad input, unreadable file, bad config)
	ExitUsage = 2 // the command line itself is wrong
)

// usageError is a wrong command line: exit 2. printed: the flag package has already
// printed it with the command's options.
type usageError struct {
	msg     string
	printed bool
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, o IO) error
}

func commands() []command {
	return []command{
		{"users", "add, remove or list the accounts of USERS_FILE (bcrypt hashes)", runUsers},
		{"secrets", "print fresh JWT_SECRET, APP_SECRET and ENCRYPTION_MASTER_KEY in .env form", runSecrets},
		{"token", "print a token for a user, signed with the configured JWT_SECRET (for testing)", runToken},
		{"config", "config check: validate the environment as the server does, and say what production would refuse", runConfig},
	}
}

// Main runs the command args names, or serve when args name none (no arguments, or only
// the server's flags), and returns the process exit code. Errors go to o.Stderr.
func Main(ctx context.Context, args []string, o IO, serve ServeFunc) int {
	if len(args) == 0 || (strings.HasPrefix(args[0], "-") && !isHelp(args[0])) {
		if err := serve(ctx, args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return ExitUsage
			}
			fmt.Fprintln(o.Stderr, "jetsocket:", err)
			return ExitError
		}
		return ExitOK
	}
	if isHelp(args[0]) || args[0] == "help" {
		printUsage(o.Stdout)
		return ExitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], o)
		var ue *usageError
		switch {
		case err == nil:
			return ExitOK
		case errors.Is(err, flag.ErrHelp):
			return ExitOK // the flag set printed the command's help
		case errors.As(err, &ue) && ue.printed:
			return ExitUsage
		case errors.As(err, &ue):
			fmt.Fprintf(o.Stderr, "jetsocket %s: %v\nRun 'jetsocket %s -h' for usage.\n", c.name, err, c.name)
			return ExitUsage
		default:
			fmt.Fprintf(o.Stderr, "jetsocket %s: %v\n", c.name, err)
			return ExitError
		}
	}
	fmt.Fprintf(o.Stderr, "jetsocket: unknown command %q\n\n", args[0])
	printUsage(o.Stderr)
	return ExitUsage
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  jetsocket [-env-file FILE]     run the server (the default)
  jetsocket COMMAND [ARGS]       run an operator command

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every command reads the environment and the .env file as the server does
(-env-file FILE to name another). 'jetsocket COMMAND -h' shows a command's options.
`)
}

// newFlags returns a flag set for a command whose errors and help go to stderr, with the
// -env-file flag every command shares with the server.
func newFlags(name, usage string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("jetsocket "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	envFile := fs.String("env-file", ".env", "dotenv file to read when present; real environment variables win")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: jetsocket %s\n\nOptions:\n", usage)
		fs.PrintDefaults()
	}
	return fs, envFile
}

// parse parses flags placed before, between or after the positional arguments (the flag
// package stops at the first positional one; operators type `users add alice -role admin`)
// and returns the positional arguments. A flag parse error is a usage error.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error(), printed: true}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
