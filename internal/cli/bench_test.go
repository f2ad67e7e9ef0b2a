package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warpmesh/warp/internal/bench"
)

func TestBenchUsageErrorsExitTwoWithOneLine(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		env  map[string]string
		args []string
	}{
		{nil, []string{"bench", "--systems", "mesh,zeromq"}},
		{nil, []string{"bench", "--plot", filepath.Join(dir, "out.gif")}},
		{nil, []string{"bench", "--plot", filepath.Join(dir, "no-extension")}},
		{nil, []string{"bench", "extra-arg"}},
		{nil, []string{"bench", "--no-such-flag"}},
		{nil, []string{"bench", "--quick=maybe"}},
		{nil, []string{"bench", "--ops", "-1"}},
		{nil, []string{"bench", "--burst", "many"}},
		{map[string]string{"WARP_QUICK": "maybe"}, []string{"bench"}},
		{map[string]string{"WARP_SYSTEMS": "floor,carrier-pigeon"}, []string{"bench"}},
	}
	for _, c := range cases {
		code, out, errOut := runCLI(t, c.env, c.args...)
		if code != ExitUsage {
			t.Errorf("%v %v: exit %d, want %d (stderr %q)", c.env, c.args, code, ExitUsage, errOut)
		}
		if strings.Count(strings.TrimRight(errOut, "\n"), "\n") != 0 || !strings.HasPrefix(errOut, "warp: ") {
			t.Errorf("%v %v: want one line starting with \"warp: \", got %q", c.env, c.args, errOut)
		}
		if out != "" {
			t.Errorf("%v %v: printed %q before refusing", c.env, c.args, out)
		}
	}
}

// TestBenchJSONDecodes runs the floor alone, briefly, and decodes its
// JSON report.
func TestBenchJSONDecodes(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "bench", "--quick", "--json", "--systems", "floor", "--ops", "50")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("the output is not JSON: %v\n%s", err, out)
	}
	if !rep.Quick || rep.Settings.LatencyOps != 50 || len(rep.Systems) != 1 {
		t.Fatalf("report: quick %v, %d ops, %d systems", rep.Quick, rep.Settings.LatencyOps, len(rep.Systems))
	}
	s := rep.Systems[0]
	if s.ID != bench.Floor || s.Await == nil || s.Await.Ops != 50 || s.Await.P50 <= 0 || s.Eventual == nil {
		t.Fatalf("floor: %+v", s)
	}
	if rep.Machine.CPUs <= 0 || rep.Machine.Go == "" {
		t.Fatalf("machine: %+v", rep.Machine)
	}
	if !strings.Contains(errOut, "floor: eventual latency") {
		t.Fatalf("no progress on stderr: %q", errOut)
	}
}

// TestBenchTableAndPlot: without --json the report is a table; --plot
// draws it into the file; --quiet hides the progress.
func TestBenchTableAndPlot(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bench.png")
	code, out, errOut := runCLI(t, nil, "bench", "--quick", "--quiet", "--systems", "floor", "--ops", "30", "--plot", file)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "vs best alternative") || !strings.Contains(out, "PublishAndAwait(4) p50") {
		t.Fatalf("no table:\n%s", out)
	}
	if errOut != "" {
		t.Fatalf("--quiet printed %q", errOut)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\x89PNG")) {
		t.Fatalf("%s is not a PNG", file)
	}
}
