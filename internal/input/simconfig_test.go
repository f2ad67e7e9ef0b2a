package input

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warpmesh/warp/sim"
)

// TestSimConfigFormats checks that YAML and JSON read alike and that the
// latency matrix becomes links both ways.
func TestSimConfigFormats(t *testing.T) {
	yml := "zones: [{name: a, nodes: 1}, {name: b, nodes: 1}]\nlatency: {a: {b: 7ms}}\nloss: 0.1\npublish: [{rate: 2}]\nduration: 2s\n"
	jsn := `{"zones": [{"name": "a", "nodes": 1}, {"name": "b", "nodes": 1}], "latency": {"a": {"b": "7ms"}}, "loss": 0.1, "publish": [{"rate": 2}], "duration": "2s"}`
	for name, data := range map[string]string{"x.yaml": yml, "x.json": jsn} {
		sc, err := ParseScenario([]byte(data), name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(sc.Links) != 1 || sc.Links[0].Link.Latency != 7*time.Millisecond || sc.Links[0].Link.Loss != 0.1 || sc.Inter.Loss != 0.1 {
			t.Errorf("%s: links %+v inter %+v", name, sc.Links, sc.Inter)
		}
		if sc.Duration != 2*time.Second || sc.Publish[0].Mode != sim.Eventual || sc.Name != "x" {
			t.Errorf("%s: %+v", name, sc)
		}
	}
}

// FuzzSimConfig feeds the scenario decoder arbitrary files: it returns a
// scenario that validates, or an error, and never panics or hangs.
func FuzzSimConfig(f *testing.F) {
	f.Add([]byte("zones: [{name: a, nodes: 1}]\npublish: [{rate: 1}]\nduration: 1s\n"), false)
	f.Add([]byte(`{"zones": [{"name": "a", "nodes": 2}], "publish": [{"rate": 1, "mode": "replicas", "need": 1}], "duration": "1s"}`), true)
	if data, err := os.ReadFile(filepath.Join("..", "..", "docs", "sim-three-zones.yaml")); err == nil {
		f.Add(data, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		name := "fuzz.yaml"
		if asJSON {
			name = "fuzz.json"
		}
		sc, err := ParseScenario(data, name)
		if err != nil {
			if err.Error() == "" {
				t.Error("an error without a reason")
			}
			return
		}
		if err := sc.Validate(); err != nil {
			t.Errorf("decoded a scenario that does not validate: %v", err)
		}
		if sc.NodeCount() < 1 || sc.NodeCount() > sim.MaxNodes {
			t.Errorf("decoded %d nodes", sc.NodeCount())
		}
	})
}
