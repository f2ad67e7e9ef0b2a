package cli

import (
	"strings"
	"testing"
)

func TestDemoRunsALocalMesh(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "demo", "--nodes", "4", "--zones", "a,b,c", "--events", "2000", "--db-delay", "2ms")
	if code != ExitOK {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	for _, want := range []string{
		"All 4 nodes see each other",
		"1. Read-through",
		"PublishAndAwaitTopology(user:42, 2):",
		"4 of 4 nodes missed their cache and read the new value",
		"Burst: node-1 invalidates 2000 keys",
		"Every cache applied them after",
		"Zone c stops (node-3 leave)",
		"PublishAndAwaitTopology(user:42, 3) failed fast",
		"errors.Is(err, syncbus.ErrQuorumNotSatisfied) = true",
		"PublishAndAwaitTopology(user:42, 2) succeeds",
		"sent one resync instead: the cache called InvalidateAll",
		"went from 100 entries to 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDemoRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--nodes", "1"},
		{"demo", "--fanout", "sideways"},
		{"demo", "--zones", ","},
		{"demo", "--profile", "moon"},
		{"demo", "--db-delay", "-1s"},
		{"demo", "extra-argument"},
	} {
		if code, _, errOut := runCLI(t, nil, args...); code != ExitUsage {
			t.Errorf("%v: exit %d (%s), want %d", args, code, errOut, ExitUsage)
		}
	}
	if code, _, _ := runCLI(t, map[string]string{"WARP_NODES": "0"}, "demo"); code != ExitUsage {
		t.Errorf("WARP_NODES=0: exit %d, want %d", code, ExitUsage)
	}
}
