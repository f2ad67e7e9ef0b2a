package cli

import (
	"github.com/spf13/cobra"
)

// exactArgs accepts exactly n positional arguments; any other count is a
// usage error (exit 2) that says what the command wants.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %s, got %d argument(s)", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}

// rangeArgs accepts between lo and hi positional arguments (hi < 0: no
// upper bound); any other count is a usage error.
func rangeArgs(lo, hi int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || (hi >= 0 && len(args) > hi) {
			return usagef("%s takes %s, got %d argument(s)", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}

// exitError is an error with an exit status other than ExitError.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// ExitCode returns the exit status the error asks for.
func (e exitError) ExitCode() int { return e.code }
