package input

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/sim"
)

// unknownYAMLField matches yaml's report of a field the file should not
// have.
var unknownYAMLField = regexp.MustCompile(`field (\S+) not found in type \S+`)

// MaxScenarioBytes bounds a scenario file: a real one is a few hundred
// bytes.
const MaxScenarioBytes = 1 << 20

// simDuration is a duration in a scenario file: a string such as "30ms"
// or "1.5s".
type simDuration time.Duration

func parseSimDuration(s string) (simDuration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (write it like 30ms, 2s or 1m)", s)
	}
	return simDuration(d), nil
}

// UnmarshalYAML reads a duration string.
func (d *simDuration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration like 30ms", n.Line)
	}
	v, err := parseSimDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// UnmarshalJSON reads a duration string.
func (d *simDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s: want a duration string like \"30ms\"", b)
	}
	v, err := parseSimDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// simFile is a scenario file: YAML, or JSON with the same fields.
type simFile struct {
	Name        string             `yaml:"name" json:"name"`
	Description string             `yaml:"description" json:"description"`
	Seed        uint64             `yaml:"seed" json:"seed"`
	Zones       []simFileZone      `yaml:"zones" json:"zones"`
	Region      string             `yaml:"region" json:"region"`
	Intra       *simFileLink       `yaml:"intra" json:"intra"`
	Inter       *simFileLink       `yaml:"inter" json:"inter"`
	Latency     map[string]simRow  `yaml:"latency" json:"latency"`
	Loss        *float64           `yaml:"loss" json:"loss"`
	Links       []simFileZoneLink  `yaml:"links" json:"links"`
	TimeScale   float64            `yaml:"timeScale" json:"timeScale"`
	Profile     string             `yaml:"profile" json:"profile"`
	Heartbeat   simDuration        `yaml:"heartbeat" json:"heartbeat"`
	Fanout      string             `yaml:"fanout" json:"fanout"`
	Publish     []simFilePublisher `yaml:"publish" json:"publish"`
	Faults      []simFileFault     `yaml:"faults" json:"faults"`
	Duration    simDuration        `yaml:"duration" json:"duration"`
	Settle      simDuration        `yaml:"settle" json:"settle"`
	Window      simDuration        `yaml:"window" json:"window"`
}

// simRow is one row of the latency matrix: the one-way latency from a
// zone to others.
type simRow map[string]simDuration

type simFileZone struct {
	Name  string `yaml:"name" json:"name"`
	Nodes int    `yaml:"nodes" json:"nodes"`
}

type simFileLink struct {
	Latency      simDuration `yaml:"latency" json:"latency"`
	Jitter       simDuration `yaml:"jitter" json:"jitter"`
	Loss         *float64    `yaml:"loss" json:"loss"`
	Duplicate    float64     `yaml:"duplicate" json:"duplicate"`
	Reorder      float64     `yaml:"reorder" json:"reorder"`
	ReorderDelay simDuration `yaml:"reorderDelay" json:"reorderDelay"`
	Bandwidth    int64       `yaml:"bandwidth" json:"bandwidth"`
	Queue        int64       `yaml:"queue" json:"queue"`
}

type simFileZoneLink struct {
	Between     []string `yaml:"between" json:"between"`
	simFileLink `yaml:",inline"`
}

type simFilePublisher struct {
	Nodes   []string    `yaml:"nodes" json:"nodes"`
	Zones   []string    `yaml:"zones" json:"zones"`
	Rate    float64     `yaml:"rate" json:"rate"`
	Mode    string      `yaml:"mode" json:"mode"`
	Need    int         `yaml:"need" json:"need"`
	Timeout simDuration `yaml:"timeout" json:"timeout"`
	Start   simDuration `yaml:"start" json:"start"`
	Stop    simDuration `yaml:"stop" json:"stop"`
}

type simFileFault struct {
	Kind   string       `yaml:"kind" json:"kind"`
	At     simDuration  `yaml:"at" json:"at"`
	For    simDuration  `yaml:"for" json:"for"`
	Zones  []string     `yaml:"zones" json:"zones"`
	Nodes  []string     `yaml:"nodes" json:"nodes"`
	To     []string     `yaml:"to" json:"to"`
	OneWay bool         `yaml:"oneWay" json:"oneWay"`
	Link   *simFileLink `yaml:"link" json:"link"`
	Every  simDuration  `yaml:"every" json:"every"`
}

// ParseScenario decodes a scenario file of `warp sim --config`, as JSON
// when name ends in .json or the data starts with '{', as YAML otherwise,
// and validates it. name is the file's name; without a name field in the
// file, the scenario is named after it. Every error names the field (or
// line) at fault; data over MaxScenarioBytes is refused unread.
func ParseScenario(data []byte, name string) (sim.Scenario, error) {
	if len(data) > MaxScenarioBytes {
		return sim.Scenario{}, fmt.Errorf("larger than %d bytes", MaxScenarioBytes)
	}
	var file simFile
	trimmed := bytes.TrimSpace(data)
	if strings.EqualFold(filepath.Ext(name), ".json") || bytes.HasPrefix(trimmed, []byte("{")) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&file); err != nil {
			return sim.Scenario{}, fmt.Errorf("bad JSON: %w", err)
		}
		if dec.More() {
			return sim.Scenario{}, errors.New("bad JSON: more than one value")
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&file); err != nil {
			if errors.Is(err, io.EOF) {
				return sim.Scenario{}, errors.New("empty file")
			}
			// yaml names the Go type of a misplaced field; the
			// file's author knows only the field. Its message
			// is put on one line.
			msg := unknownYAMLField.ReplaceAllString(strings.Join(strings.Fields(err.Error()), " "), "unknown field $1")
			return sim.Scenario{}, fmt.Errorf("bad YAML: %s", msg)
		}
	}
	return file.scenario(name)
}

// link converts a link of the file, with loss defaulting to the file's.
func (l *simFileLink) link(loss *float64) sim.Link {
	out := sim.Link{
		Latency: time.Duration(l.Latency), Jitter: time.Duration(l.Jitter),
		Duplicate: l.Duplicate, Reorder: l.Reorder, ReorderDelay: time.Duration(l.ReorderDelay),
		Bandwidth: l.Bandwidth, Queue: l.Queue,
	}
	switch {
	case l.Loss != nil:
		out.Loss = *l.Loss
	case loss != nil:
		out.Loss = *loss
	}
	return out
}

// scenario turns the file into a validated scenario.
func (f *simFile) scenario(path string) (sim.Scenario, error) {
	sc := sim.Scenario{
		Name: f.Name, Description: f.Description, Seed: f.Seed, Region: f.Region,
		TimeScale: f.TimeScale, Profile: f.Profile, Heartbeat: time.Duration(f.Heartbeat),
		Duration: time.Duration(f.Duration), Settle: time.Duration(f.Settle), Window: time.Duration(f.Window),
	}
	if sc.Name == "" {
		sc.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	zones := map[string]bool{}
	for _, z := range f.Zones {
		sc.Zones = append(sc.Zones, sim.ZoneSpec{Name: z.Name, Nodes: z.Nodes})
		zones[z.Name] = true
	}
	if f.Loss != nil && (*f.Loss < 0 || *f.Loss > 1 || *f.Loss != *f.Loss) {
		bad("loss", "%v is not a probability (0..1)", *f.Loss)
	}
	intra := &simFileLink{Latency: simDuration(200 * time.Microsecond)}
	if f.Intra != nil {
		intra = f.Intra
	}
	inter := &simFileLink{Latency: simDuration(time.Millisecond)}
	if f.Inter != nil {
		inter = f.Inter
	}
	sc.Intra, sc.Inter = intra.link(f.Loss), inter.link(f.Loss)

	// The latency matrix, row by row in a stable order; a pair named in
	// both directions takes the later row's value.
	rows := make([]string, 0, len(f.Latency))
	for a := range f.Latency {
		rows = append(rows, a)
	}
	sort.Strings(rows)
	for _, a := range rows {
		if !zones[a] {
			bad("latency."+a, "unknown zone %q", a)
			continue
		}
		cols := make([]string, 0, len(f.Latency[a]))
		for b := range f.Latency[a] {
			cols = append(cols, b)
		}
		sort.Strings(cols)
		for _, b := range cols {
			if !zones[b] {
				bad("latency."+a+"."+b, "unknown zone %q", b)
				continue
			}
			base := *inter
			if a == b {
				base = *intra
			}
			base.Latency = f.Latency[a][b]
			sc.Links = append(sc.Links, sim.ZoneLink{A: a, B: b, Link: base.link(f.Loss)})
		}
	}
	for i, l := range f.Links {
		field := fmt.Sprintf("links[%d].between", i)
		if len(l.Between) != 2 {
			bad(field, "want two zones (the same one twice for the link within it)")
			continue
		}
		sc.Links = append(sc.Links, sim.ZoneLink{A: l.Between[0], B: l.Between[1], Link: l.simFileLink.link(f.Loss)})
	}
	if f.Fanout != "" {
		m, err := mesh.ParseFanoutMode(f.Fanout)
		if err != nil {
			bad("fanout", "%q: want auto, direct or relay", f.Fanout)
		}
		sc.Fanout = m
	}
	for _, p := range f.Publish {
		sc.Publish = append(sc.Publish, sim.Publisher{
			Nodes: p.Nodes, Zones: p.Zones, Rate: p.Rate, Mode: sim.PublishMode(p.Mode), Need: p.Need,
			Timeout: time.Duration(p.Timeout), Start: time.Duration(p.Start), Stop: time.Duration(p.Stop),
		})
	}
	for i, ft := range f.Faults {
		fault := sim.Fault{
			Kind: sim.FaultKind(ft.Kind), At: time.Duration(ft.At), For: time.Duration(ft.For),
			Zones: ft.Zones, Nodes: ft.Nodes, To: ft.To, OneWay: ft.OneWay, Every: time.Duration(ft.Every),
		}
		if ft.Link != nil {
			fault.Link = ft.Link.link(nil)
		} else if fault.Kind == sim.FaultLink {
			bad(fmt.Sprintf("faults[%d].link", i), "a link fault needs the link's settings")
		}
		sc.Faults = append(sc.Faults, fault)
	}
	if err := sc.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return sim.Scenario{}, err
	}
	return sc, nil
}
