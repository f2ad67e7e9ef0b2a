package cli

import (
	"strings"
	"testing"
)

func TestDemoRunsALocalMesh(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "demo", "--nodes", "4", "--zones", "a,b", "--events", "200")
	if code != ExitOK {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	for _, want := range []string{
		"All 4 nodes see each other",
		"PublishAndAwait(user:43, 3): acknowledged by [node-2 node-3 node-4]",
		"zones [a b]",
		"Publish × 200: every other node received all of them",
		"now fails fast",
		"PublishAndAwait(user:45, 2) succeeds",
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
	} {
		if code, _, errOut := runCLI(t, nil, args...); code != ExitUsage {
			t.Errorf("%v: exit %d (%s), want %d", args, code, errOut, ExitUsage)
		}
	}
	if code, _, _ := runCLI(t, map[string]string{"WARP_NODES": "0"}, "demo"); code != ExitUsage {
		t.Errorf("WARP_NODES=0: exit %d, want %d", code, ExitUsage)
	}
}
