package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warpmesh/warp/sim"
)

func runSimCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = runCLICtx(ctx, nil, &out, &errb, append([]string{"sim"}, args...)...)
	return code, out.String(), errb.String()
}

func TestSimList(t *testing.T) {
	code, out, _ := runSimCLI(t, "--list")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, s := range sim.Scenarios() {
		if !strings.Contains(out, s.Name) {
			t.Errorf("--list does not name %s:\n%s", s.Name, out)
		}
	}
}

func TestSimUsageErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := "zones: [{name: a, nodes: 1}]\npublish: [{rate: 1}]\nduration: 1s\n"
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no scenario", nil, "name a scenario"},
		{"unknown scenario", []string{"nope"}, `unknown scenario "nope"`},
		{"both", []string{"loss", "--config", write("g.yaml", good)}, "not both"},
		{"missing file", []string{"--config", filepath.Join(dir, "absent.yaml")}, "absent.yaml"},
		{"unknown field", []string{"--config", write("f.yaml", good+"zonez: 1\n")}, "unknown field zonez"},
		{"no nodes", []string{"--config", write("n.yaml", "zones: [{name: a, nodes: 0}]\nduration: 1s\n")}, "zones[0].nodes"},
		{"bad duration", []string{"--config", write("d.yaml", "zones: [{name: a, nodes: 1}]\nduration: soon\n")}, `"soon" is not a duration`},
		{"unknown zone", []string{"--config", write("z.yaml", good+"latency: {a: {b: 1ms}}\n")}, "latency.a.b"},
		{"bad mode", []string{"--config", write("m.yaml", "zones: [{name: a, nodes: 2}]\npublish: [{rate: 1, mode: maybe}]\nduration: 1s\n")}, "publish[0].mode"},
		{"bad fault", []string{"--config", write("k.yaml", good+"faults: [{kind: meteor, at: 0s}]\n")}, "faults[0].kind"},
		{"bad json", []string{"--config", write("j.json", `{"zones": [{"name": "a", "nodes": "many"}]}`)}, "bad JSON"},
		{"bad plot", []string{"loss", "--plot", filepath.Join(dir, "x.gif")}, ".svg or .png"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runSimCLI(t, tc.args...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", code, ExitUsage, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not say %q", stderr, tc.want)
			}
		})
	}
}

// TestSimRunsConfig runs a small scenario from a file and checks the
// table, the JSON report, the plot and the seed flag.
func TestSimRunsConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tiny.yaml")
	body := `zones:
  - {name: a, nodes: 2}
  - {name: b, nodes: 1}
latency: {a: {b: 3ms}}
publish:
  - {rate: 20}
  - {rate: 5, mode: zones, need: 2, zones: [a]}
duration: 1s
settle: 1s
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	js, svg := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.svg")
	code, out, stderr := runSimCLI(t, "--config", cfg, "--json", js, "--plot", svg, "--seed", "99")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"scenario tiny", "delivery latency", "zones=2", "replay with: warp sim --config"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var rep sim.Report
	data, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Seed != 99 || rep.Published == 0 || rep.Nodes != 3 || rep.Delivery.Expected == 0 {
		t.Errorf("report: seed %d, %d published, %d nodes, delivery %+v", rep.Seed, rep.Published, rep.Nodes, rep.Delivery)
	}
	img, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(img, []byte("<svg")) || !bytes.Contains(img, []byte("delivery latency")) {
		t.Errorf("the plot is not an SVG with the latency chart (%d bytes)", len(img))
	}
}

// TestSimDocsConfig keeps the README's scenario file valid.
func TestSimDocsConfig(t *testing.T) {
	sc, err := loadSimConfig(filepath.Join("..", "..", "docs", "sim-three-zones.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.NodeCount() != 12 || len(sc.Faults) != 1 {
		t.Errorf("docs scenario: %d nodes, %d faults", sc.NodeCount(), len(sc.Faults))
	}
}
