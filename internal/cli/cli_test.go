package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code = run(context.Background(), args, lookup, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, nil, "version")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(out, "warp ") || !strings.Contains(out, "go1.") {
		t.Fatalf("version output %q", out)
	}
}

func TestUsageErrorsExitTwoWithOneLine(t *testing.T) {
	cases := [][]string{
		{"no-such-command"},
		{"version", "--no-such-flag"},
		{"version", "extra-arg"},
	}
	for _, args := range cases {
		code, _, errOut := runCLI(t, nil, args...)
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, ExitUsage, errOut)
		}
		if strings.Count(strings.TrimRight(errOut, "\n"), "\n") != 0 || !strings.HasPrefix(errOut, "warp: ") {
			t.Errorf("%v: want one line starting with \"warp: \", got %q", args, errOut)
		}
	}
}

func TestFlagsReadFromEnvironment(t *testing.T) {
	var got string
	var gotN int
	newProbe := func() *cobra.Command {
		cmd := &cobra.Command{
			Use:  "probe",
			Args: noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return nil },
		}
		cmd.Flags().StringVar(&got, "seed-peers", "", "")
		cmd.Flags().IntVar(&gotN, "count", 1, "")
		return cmd
	}
	subcommands = append(subcommands, newProbe)
	t.Cleanup(func() { subcommands = subcommands[:len(subcommands)-1] })

	env := map[string]string{"WARP_SEED_PEERS": "a:1,b:2", "WARP_COUNT": "7"}
	if code, _, e := runCLI(t, env, "probe"); code != ExitOK {
		t.Fatalf("exit %d: %s", code, e)
	}
	if got != "a:1,b:2" || gotN != 7 {
		t.Fatalf("env not applied: %q %d", got, gotN)
	}

	// A flag on the command line wins over the environment.
	if code, _, e := runCLI(t, env, "probe", "--count", "3"); code != ExitOK || gotN != 3 {
		t.Fatalf("exit %d count %d: %s", code, gotN, e)
	}

	// A bad value in the environment is a usage error naming the variable.
	code, _, errOut := runCLI(t, map[string]string{"WARP_COUNT": "many"}, "probe")
	if code != ExitUsage || !strings.Contains(errOut, "WARP_COUNT") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("ack-timeout"); got != "WARP_ACK_TIMEOUT" {
		t.Fatal(got)
	}
}
