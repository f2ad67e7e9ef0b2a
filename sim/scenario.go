package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/mesh"
)

// Scenario describes one simulation: a cluster (zones of nodes and the
// links between them), publishers, and faults over time. Every duration
// is simulated time, counted from the moment publishing starts (after the
// cluster converged). Run executes it.
type Scenario struct {
	// Name and Description say what it shows.
	Name        string
	Description string
	// Seed fixes every random choice (see the package documentation).
	Seed uint64

	// Zones are the cluster's zones and their sizes; nodes are named
	// ZONE-1, ZONE-2, … Region is every node's region (default "sim").
	Zones  []ZoneSpec
	Region string
	// Intra and Inter are the links within and between zones, and Links
	// the links of given zone pairs (both directions).
	Intra, Inter Link
	Links        []ZoneLink

	// TimeScale is how much slower than real time the simulation runs (0:
	// AutoScale of the number of nodes).
	TimeScale float64
	// Profile ("lan", "local" or "wan"; default "lan"), Heartbeat and
	// Fanout are the nodes' MeshOptions.
	Profile   string
	Heartbeat time.Duration
	Fanout    mesh.FanoutMode

	// Publish are the publishers.
	Publish []Publisher
	// Faults happen at given times.
	Faults []Fault

	// Duration is how long publishing lasts; Settle is the longest the
	// run then waits for the last events to arrive everywhere (default
	// 3s); Window is the delivery deadline the report's "within" figures
	// use (default 1s).
	Duration time.Duration
	Settle   time.Duration
	Window   time.Duration
}

// ZoneSpec is one zone and its number of nodes.
type ZoneSpec struct {
	Name  string
	Nodes int
}

// PublishMode is how a publisher publishes.
type PublishMode string

// Publish modes.
const (
	// Eventual publishes with Publish.
	Eventual PublishMode = "eventual"
	// Replicas publishes with PublishAndAwait(ctx, key, Need).
	Replicas PublishMode = "replicas"
	// Zones publishes with PublishAndAwaitTopology(ctx, key, Need).
	Zones PublishMode = "zones"
)

// Publisher publishes events at a steady rate from some nodes.
type Publisher struct {
	// Nodes names the publishing nodes; otherwise every node of Zones, or
	// of every zone when both are empty. Each event comes from one of
	// them, chosen at random (from the seed).
	Nodes []string
	Zones []string
	// Rate is the events per simulated second, all publishing nodes
	// together.
	Rate float64
	// Mode is Eventual (the default), Replicas or Zones; Need is the
	// replicas or zones an awaited publish waits for, and Timeout its
	// deadline (default 5s).
	Mode    PublishMode
	Need    int
	Timeout time.Duration
	// Start and Stop bound when the publisher publishes (Stop 0: until
	// Duration).
	Start, Stop time.Duration
}

// FaultKind names a kind of fault.
type FaultKind string

// Kinds of fault.
const (
	// FaultPartition cuts the nodes of Zones (or Nodes) from the others
	// (or from To), both ways unless OneWay, for For.
	FaultPartition FaultKind = "partition"
	// FaultCrash crashes Nodes; with For, they restart after it.
	FaultCrash FaultKind = "crash"
	// FaultCrashRelay crashes the first node of zone Zones[0] that
	// receives an event from another zone after At — in relay mode, a
	// relay, mid-publish: the event it was handed is lost with it. With
	// For, it restarts after it.
	FaultCrashRelay FaultKind = "crash-relay"
	// FaultRestart restarts Nodes gracefully, one after the other.
	FaultRestart FaultKind = "restart"
	// FaultRollingRestart restarts every node (or Nodes) gracefully, one
	// every Every (default: as fast as they rejoin).
	FaultRollingRestart FaultKind = "rolling-restart"
	// FaultPause pauses Nodes for For.
	FaultPause FaultKind = "pause"
	// FaultLink sets the links from the zones of Zones to those of To
	// (both: every zone) to Link, both ways, for For.
	FaultLink FaultKind = "link"
)

// Fault is one fault of a scenario.
type Fault struct {
	Kind FaultKind
	// At is when it happens; For how long it lasts (0: until the end).
	At, For time.Duration
	// Zones, Nodes and To select where (see FaultKind).
	Zones, Nodes, To []string
	// OneWay makes a partition cut only the direction from Zones (or
	// Nodes) to the others.
	OneWay bool
	// Link is the links' settings during a FaultLink.
	Link Link
	// Every spaces a rolling restart's restarts.
	Every time.Duration
}

// Defaults of Scenario.
const (
	DefaultSettle  = 3 * time.Second
	DefaultWindow  = time.Second
	DefaultTimeout = 5 * time.Second
	DefaultRegion  = "sim"
	// MaxNodes bounds a scenario's cluster.
	MaxNodes = 5000
)

// NodeNames returns the scenario's node names, zone by zone.
func (s *Scenario) NodeNames() []string {
	var out []string
	for _, z := range s.Zones {
		for i := range z.Nodes {
			out = append(out, fmt.Sprintf("%s-%d", z.Name, i+1))
		}
	}
	return out
}

// NodeCount returns the number of nodes.
func (s *Scenario) NodeCount() int {
	n := 0
	for _, z := range s.Zones {
		n += z.Nodes
	}
	return n
}

func (s *Scenario) fillDefaults() {
	if s.Region == "" {
		s.Region = DefaultRegion
	}
	if s.Profile == "" {
		s.Profile = membership.ProfileLAN
	}
	if s.Settle == 0 {
		s.Settle = DefaultSettle
	}
	if s.Window == 0 {
		s.Window = DefaultWindow
	}
	for i := range s.Publish {
		p := &s.Publish[i]
		if p.Mode == "" {
			p.Mode = Eventual
		}
		if p.Timeout == 0 {
			p.Timeout = DefaultTimeout
		}
		if p.Stop == 0 {
			p.Stop = s.Duration
		}
	}
}

// Validate fills in the defaults and reports every setting that cannot
// work, each naming its field the way a scenario file spells it
// ("zones[1].nodes", "publish[0].rate", …).
func (s *Scenario) Validate() error {
	s.fillDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(s.Zones) == 0 {
		bad("zones", "at least one zone is needed")
	}
	zones := map[string]bool{}
	total := 0
	for i, z := range s.Zones {
		f := fmt.Sprintf("zones[%d]", i)
		switch {
		case z.Name == "":
			bad(f+".name", "empty")
		case len(z.Name) > membership.MaxNameLen-8:
			bad(f+".name", "%q is longer than %d bytes", z.Name, membership.MaxNameLen-8)
		case zones[z.Name]:
			bad(f+".name", "zone %q named twice", z.Name)
		}
		zones[z.Name] = true
		if z.Nodes < 1 || z.Nodes > MaxHostsPerZone {
			bad(f+".nodes", "%d out of range (1..%d)", z.Nodes, MaxHostsPerZone)
		}
		total += max(z.Nodes, 0)
	}
	if len(s.Zones) > MaxZones {
		bad("zones", "%d zones, at most %d", len(s.Zones), MaxZones)
	}
	if total > MaxNodes {
		bad("zones", "%d nodes in all, at most %d", total, MaxNodes)
		// Naming that many nodes to check the rest would take longer
		// than the check is worth.
		return errors.Join(errs...)
	}
	names := map[string]bool{}
	for _, n := range s.NodeNames() {
		names[n] = true
	}
	if err := s.Intra.Validate(); err != nil {
		bad("intra", "%v", err)
	}
	if err := s.Inter.Validate(); err != nil {
		bad("inter", "%v", err)
	}
	for i, l := range s.Links {
		f := fmt.Sprintf("links[%d]", i)
		if !zones[l.A] {
			bad(f+".a", "unknown zone %q", l.A)
		}
		if !zones[l.B] {
			bad(f+".b", "unknown zone %q", l.B)
		}
		if err := l.Link.Validate(); err != nil {
			bad(f, "%v", err)
		}
	}
	if math.IsNaN(s.TimeScale) || math.IsInf(s.TimeScale, 0) || s.TimeScale < 0 || s.TimeScale > 1000 {
		bad("timeScale", "%v out of range (0: automatic, up to 1000)", s.TimeScale)
	}
	switch s.Profile {
	case membership.ProfileLAN, membership.ProfileLocal, membership.ProfileWAN:
	default:
		bad("profile", "%q: want lan, local or wan", s.Profile)
	}
	if s.Heartbeat < 0 {
		bad("heartbeat", "%v is negative", s.Heartbeat)
	}
	if s.Fanout > mesh.FanoutRelay {
		bad("fanout", "%v unknown", s.Fanout)
	}
	if s.Duration <= 0 || s.Duration > 24*time.Hour {
		bad("duration", "%v out of range (more than 0, up to 24h)", s.Duration)
	}
	if s.Settle < 0 || s.Settle > time.Hour {
		bad("settle", "%v out of range (0..1h)", s.Settle)
	}
	if s.Window < 0 || s.Window > time.Hour {
		bad("window", "%v out of range (0..1h)", s.Window)
	}
	checkNames := func(f string, list []string, known map[string]bool, what string) {
		for j, n := range list {
			if !known[n] {
				bad(fmt.Sprintf("%s[%d]", f, j), "unknown %s %q", what, n)
			}
		}
	}
	for i, p := range s.Publish {
		f := fmt.Sprintf("publish[%d]", i)
		checkNames(f+".nodes", p.Nodes, names, "node")
		checkNames(f+".zones", p.Zones, zones, "zone")
		if math.IsNaN(p.Rate) || p.Rate <= 0 || p.Rate > 100000 {
			bad(f+".rate", "%v out of range (more than 0, up to 100000 events a second)", p.Rate)
		}
		switch p.Mode {
		case Eventual:
		case Replicas:
			if p.Need < 1 || p.Need >= max(total, 2) {
				bad(f+".need", "%d replicas out of range (1..%d)", p.Need, max(total-1, 1))
			}
		case Zones:
			if p.Need < 1 || p.Need > len(s.Zones) {
				bad(f+".need", "%d zones out of range (1..%d)", p.Need, len(s.Zones))
			}
		default:
			bad(f+".mode", "%q: want eventual, replicas or zones", p.Mode)
		}
		if p.Timeout < 0 || p.Timeout > time.Hour {
			bad(f+".timeout", "%v out of range (0..1h)", p.Timeout)
		}
		if p.Start < 0 || p.Stop < p.Start || p.Stop > s.Duration {
			bad(f+".start", "start %v and stop %v must satisfy 0 <= start <= stop <= duration %v", p.Start, p.Stop, s.Duration)
		}
	}
	for i, ft := range s.Faults {
		f := fmt.Sprintf("faults[%d]", i)
		if ft.At < 0 || ft.At > s.Duration {
			bad(f+".at", "%v out of range (0..duration %v)", ft.At, s.Duration)
		}
		if ft.For < 0 {
			bad(f+".for", "%v is negative", ft.For)
		}
		if ft.Every < 0 {
			bad(f+".every", "%v is negative", ft.Every)
		}
		checkNames(f+".nodes", ft.Nodes, names, "node")
		checkNames(f+".zones", ft.Zones, zones, "zone")
		checkNames(f+".to", ft.To, zones, "zone")
		switch ft.Kind {
		case FaultPartition:
			if len(ft.Zones) == 0 && len(ft.Nodes) == 0 {
				bad(f+".zones", "a partition needs zones or nodes to cut off")
			}
		case FaultCrash, FaultRestart, FaultPause:
			if len(ft.Nodes) == 0 {
				bad(f+".nodes", "%s needs nodes", ft.Kind)
			}
			if ft.Kind == FaultPause && ft.For == 0 {
				bad(f+".for", "a pause needs a length")
			}
		case FaultCrashRelay:
			if len(ft.Zones) != 1 {
				bad(f+".zones", "crash-relay needs exactly one zone")
			}
		case FaultRollingRestart:
		case FaultLink:
			if err := ft.Link.Validate(); err != nil {
				bad(f+".link", "%v", err)
			}
		default:
			bad(f+".kind", "%q: want one of %v", ft.Kind, FaultKinds())
		}
	}
	return errors.Join(errs...)
}

// FaultKinds lists the kinds of fault.
func FaultKinds() []FaultKind {
	return []FaultKind{FaultPartition, FaultCrash, FaultCrashRelay, FaultRestart, FaultRollingRestart, FaultPause, FaultLink}
}

// nodeSpecs returns the cluster's nodes.
func (s *Scenario) nodeSpecs() []NodeSpec {
	var out []NodeSpec
	for _, z := range s.Zones {
		for i := range z.Nodes {
			out = append(out, NodeSpec{Name: fmt.Sprintf("%s-%d", z.Name, i+1), Zone: z.Name, Region: s.Region})
		}
	}
	return out
}

// zoneNames returns the zones' names in order.
func (s *Scenario) zoneNames() []string {
	out := make([]string, len(s.Zones))
	for i, z := range s.Zones {
		out[i] = z.Name
	}
	return out
}

// publishers returns the names of the nodes a publisher publishes from.
func (s *Scenario) publishers(p Publisher) []string {
	if len(p.Nodes) > 0 {
		return slices.Clone(p.Nodes)
	}
	var out []string
	for _, n := range s.nodeSpecs() {
		if len(p.Zones) == 0 || slices.Contains(p.Zones, n.Zone) {
			out = append(out, n.Name)
		}
	}
	return out
}
