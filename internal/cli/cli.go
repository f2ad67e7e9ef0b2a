// Package cli implements the warp command: its subcommands, flags, and the
// rules every subcommand shares (WARP_* environment variables, exit status).
// cmd/warp only calls Main.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit statuses of the warp command.
const (
	ExitOK    = 0
	ExitError = 1 // the command ran and failed
	ExitUsage = 2 // the command line (or a WARP_* variable) is wrong
)

// EnvPrefix prefixes the environment variable that stands for every flag:
// --seed-peers is also read from WARP_SEED_PEERS.
const EnvPrefix = "WARP_"

// usageError marks an error in how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// Main runs the warp command with args (without the program name) and
// returns its exit status. It stops on SIGINT and SIGTERM.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, os.LookupEnv, stdout, stderr)
}

// run is Main with its environment injected, for tests.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	root := newRoot(lookupEnv)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsageError(err) {
		fmt.Fprintf(stderr, "warp: %s\n", oneLine(err))
		return ExitUsage
	}
	fmt.Fprintf(stderr, "warp: %s\n", oneLine(err))
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return ExitError
}

// exitCoder is an error that asks for an exit status of its own, such as
// warp publish's status for an unsatisfied acknowledgement.
type exitCoder interface {
	error
	ExitCode() int
}

// isCobraUsageError recognises the errors cobra itself returns for a bad
// command line, which carry no type of their own.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, prefix := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument", "invalid argument", "required flag",
		// cobra's positional-argument checks (ExactArgs, MinimumNArgs, …).
		"accepts ", "requires at least", "if any flags in the group"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func newRoot(lookupEnv func(string) (string, bool)) *cobra.Command {
	root := &cobra.Command{
		Use:   "warp",
		Short: "Warp keeps the local caches of a cluster of Go services in sync",
		Long: "warp runs and inspects Warp nodes: a brokerless mesh that carries cache\n" +
			"invalidations between services, with acknowledgements by replicas and zones.\n\n" +
			"Every flag can also be set with an environment variable: --some-flag is\n" +
			"read from " + EnvPrefix + "SOME_FLAG when the flag is not given.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd, lookupEnv)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError{err}
	})
	root.AddCommand(newVersionCmd())
	root.AddCommand(newDecodeCmd())
	root.AddCommand(newSimCmd())
	root.AddCommand(newBenchCmd())
	for _, add := range subcommands {
		root.AddCommand(add())
	}
	return root
}

// subcommands lists the constructors of the subcommands defined in other
// files of this package.
var subcommands []func() *cobra.Command

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args[0])
	}
	return nil
}

// applyEnv sets every flag that was not given on the command line from its
// WARP_* environment variable.
func applyEnv(cmd *cobra.Command, lookupEnv func(string) (string, bool)) error {
	var firstErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if firstErr != nil || f.Changed {
			return
		}
		name := EnvName(f.Name)
		v, ok := lookupEnv(name)
		if !ok {
			return
		}
		if err := cmd.Flags().Set(f.Name, v); err != nil {
			firstErr = usagef("%s=%q: %v", name, v, err)
		}
	})
	return firstErr
}

// EnvName returns the environment variable read for a flag.
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}
