package chaos

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Ceilings of invariant 4 for one `warp node` process under the chaos
// load: far above what a healthy node uses (a few dozen goroutines plus
// one per open HTTP request, some tens of MiB), far below what a leak
// reaches over a run.
const (
	MaxGoroutines  = 1000
	MaxMemoryBytes = 512 << 20
)

// Config says how lenient Check is and which ceilings it applies.
type Config struct {
	// Grace stretches every fault past its end (see the package
	// documentation): failure detection, rejoining, new incarnations.
	Grace time.Duration
	// Settle is how long an event may take to arrive after its publish
	// returned.
	Settle time.Duration
	// MaxGoroutines and MaxMemoryBytes are the ceilings of invariant 4
	// (0: the package's constants).
	MaxGoroutines  int
	MaxMemoryBytes uint64
}

// Invariants, numbered as in the package documentation.
const (
	FalseAck      = 1
	SilentLoss    = 2
	Duplicate     = 3
	CrashOrLimits = 4
)

var invariantNames = [5]string{"", "false acknowledgement", "silent loss", "duplicate delivery", "crash or ceiling"}

// Violation is one breach of an invariant.
type Violation struct {
	Invariant int
	Node, Key string
	Detail    string
}

func (v Violation) String() string {
	return fmt.Sprintf("invariant %d (%s): node %s key %q: %s", v.Invariant, invariantNames[v.Invariant], v.Node, v.Key, v.Detail)
}

// Summary is the figures of a run.
type Summary struct {
	Nodes, Streams, Faults int
	// Publishes counts the publishes attempted, ByKind by kind, Sent those
	// that may have gone out.
	Publishes int
	ByKind    map[Kind]int
	Sent      int
	// AwaitedOK counts the awaited publishes that succeeded; Failures the
	// failed publishes by reason.
	AwaitedOK int
	Failures  map[string]int
	// Deliveries and Resyncs count the events the subscriptions received
	// (resyncs apart); Stray those whose key no publish used.
	Deliveries, Resyncs, Stray int
	// Owed counts the (event, subscription) pairs invariant 2 holds to
	// delivery, Reached those delivered, Covered those a resync
	// announced; Excused counts the (sent event, node) pairs where a fault
	// or the node's subscriptions' lifetimes owed nothing.
	Owed, Reached, Covered, Excused int
	// AckChecks counts the (awaited success, named node) pairs checked;
	// AckUnverifiable those the named node had no subscription over.
	AckChecks, AckUnverifiable int
	// PeakGoroutines and PeakMemoryBytes are the highest samples.
	PeakGoroutines  int
	PeakMemoryBytes uint64
	Samples         int
	// Violations counts breaches by invariant (index 1..4).
	Violations [5]int
	// The settings the run was checked with.
	Grace, Settle  time.Duration
	MaxGoroutines  int
	MaxMemoryBytes uint64
}

// TotalViolations is the sum over the invariants.
func (s *Summary) TotalViolations() int {
	n := 0
	for _, v := range s.Violations {
		n += v
	}
	return n
}

// Result is the outcome of Check.
type Result struct {
	Summary
	// Violations lists every breach found.
	Violations []Violation
}

// Err returns nil when no invariant was breached, else an error listing
// the first breaches.
func (r *Result) Err() error {
	if len(r.Violations) == 0 {
		return nil
	}
	const show = 20
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: %d violations", len(r.Violations))
	for i, v := range r.Violations {
		if i == show {
			fmt.Fprintf(&b, "\n  … and %d more", len(r.Violations)-show)
			break
		}
		b.WriteString("\n  " + v.String())
	}
	return errors.New(b.String())
}

// stream is a Stream indexed for the checks.
type stream struct {
	*Stream
	byKey   map[string][]string // key → IDs delivered, in order
	resyncs []Delivery          // in order of receipt
}

func (s *stream) openOver(from, to time.Time) bool {
	return !s.Opened.After(from) && (s.Closed.IsZero() || !s.Closed.Before(to))
}

// covered reports whether a resync after start announced that key, from
// origin, may have been missed.
func (s *stream) covered(key, origin string, start time.Time) bool {
	for _, r := range s.resyncs {
		if !r.At.Before(start) && strings.HasPrefix(key, r.Key) && (r.Origin == "" || r.Origin == origin) {
			return true
		}
	}
	return false
}

// Check judges rec against the four invariants.
func Check(rec *Record, cfg Config) *Result {
	if cfg.MaxGoroutines <= 0 {
		cfg.MaxGoroutines = MaxGoroutines
	}
	if cfg.MaxMemoryBytes == 0 {
		cfg.MaxMemoryBytes = MaxMemoryBytes
	}
	res := &Result{Summary: Summary{
		Nodes: len(rec.Nodes), Streams: len(rec.Streams), Faults: len(rec.Faults),
		ByKind: map[Kind]int{}, Failures: map[string]int{},
		Grace: cfg.Grace, Settle: cfg.Settle, MaxGoroutines: cfg.MaxGoroutines, MaxMemoryBytes: cfg.MaxMemoryBytes,
	}}
	flag := func(inv int, node, key, format string, args ...any) {
		res.Violations = append(res.Violations, Violation{Invariant: inv, Node: node, Key: key, Detail: fmt.Sprintf(format, args...)})
		res.Summary.Violations[inv]++
	}

	zoneOf := make(map[string]string, len(rec.Nodes))
	zoneNodes := map[string][]string{}
	for _, n := range rec.Nodes {
		zoneOf[n.Name] = n.Zone
		zoneNodes[n.Zone] = append(zoneNodes[n.Zone], n.Name)
	}
	published := make(map[string]bool, len(rec.Publishes))
	for i := range rec.Publishes {
		published[rec.Publishes[i].Key] = true
	}

	// Index the streams, and check invariant 3 on the way.
	byNode := map[string][]*stream{}
	for i := range rec.Streams {
		s := &stream{Stream: &rec.Streams[i], byKey: map[string][]string{}}
		seen := make(map[string]bool, len(s.Events))
		for _, d := range s.Events {
			if d.Op == OpResync {
				res.Resyncs++
				s.resyncs = append(s.resyncs, d)
				continue
			}
			res.Deliveries++
			if !published[d.Key] {
				res.Stray++
			}
			if d.ID != "" && seen[d.ID] {
				flag(Duplicate, s.Node, d.Key, "event %s delivered twice to the stream opened at %s", d.ID, stamp(s.Opened))
			}
			seen[d.ID] = true
			s.byKey[d.Key] = append(s.byKey[d.Key], d.ID)
		}
		byNode[s.Node] = append(byNode[s.Node], s)
	}

	for i := range rec.Publishes {
		p := &rec.Publishes[i]
		res.Publishes++
		res.ByKind[p.Kind]++
		if p.Err != "" {
			res.Failures[p.Err]++
		} else if p.Kind != Plain {
			res.AwaitedOK++
		}
		if !p.Sent() {
			continue
		}
		res.Sent++
		if p.Err == "" && p.Kind != Plain {
			checkAck(res, p, cfg, byNode, zoneOf, zoneNodes, flag)
		}
		checkLoss(res, rec, p, cfg, byNode, flag)
	}

	// Invariant 4.
	for _, e := range rec.Exits {
		flag(CrashOrLimits, e.Node, "", "the process exited unexpectedly at %s: %s", stamp(e.At), e.Detail)
	}
	for _, s := range rec.Samples {
		res.Samples++
		res.PeakGoroutines = max(res.PeakGoroutines, s.Goroutines)
		res.PeakMemoryBytes = max(res.PeakMemoryBytes, s.MemoryBytes)
		if s.Goroutines > cfg.MaxGoroutines {
			flag(CrashOrLimits, s.Node, "", "%d goroutines at %s, ceiling %d", s.Goroutines, stamp(s.At), cfg.MaxGoroutines)
		}
		if s.MemoryBytes > cfg.MaxMemoryBytes {
			flag(CrashOrLimits, s.Node, "", "%d bytes of memory at %s, ceiling %d", s.MemoryBytes, stamp(s.At), cfg.MaxMemoryBytes)
		}
	}
	slices.SortStableFunc(res.Violations, func(a, b Violation) int { return cmp.Compare(a.Invariant, b.Invariant) })
	return res
}

// checkAck checks invariant 1 for the successful awaited publish p.
func checkAck(res *Result, p *Publish, cfg Config, byNode map[string][]*stream, zoneOf map[string]string,
	zoneNodes map[string][]string, flag func(int, string, string, string, ...any)) {
	until := p.End.Add(cfg.Settle)
	// state reports whether node applied p by its subscriptions: "ok" (a
	// verifiable subscription got it or a resync covering it), "missing"
	// (a verifiable one got neither) or "unverifiable" (none was open over
	// the call).
	state := func(node string) string {
		verifiable := false
		for _, s := range byNode[node] {
			if !s.openOver(p.Start, until) {
				continue
			}
			verifiable = true
			if len(s.byKey[p.Key]) > 0 || s.covered(p.Key, p.Node, p.Start) {
				return "ok"
			}
		}
		if verifiable {
			return "missing"
		}
		return "unverifiable"
	}
	nodes := uniq(p.AckedNodes)
	acked := map[string]string{}
	for _, n := range nodes {
		if _, known := zoneOf[n]; !known {
			flag(FalseAck, n, p.Key, "the ack report names %s, which is not a node of the cluster", n)
			continue
		}
		res.AckChecks++
		st := state(n)
		acked[n] = st
		switch st {
		case "missing":
			flag(FalseAck, n, p.Key, "acknowledged a %s publish by %s (%s … %s) that its subscription never received", p.Kind, p.Node, stamp(p.Start), stamp(p.End))
		case "unverifiable":
			res.AckUnverifiable++
		}
	}
	zones := uniq(p.AckedZones)
	for _, z := range zones {
		members, known := zoneNodes[z]
		if !known {
			flag(FalseAck, p.Node, p.Key, "the ack report names zone %q, which has no node", z)
			continue
		}
		ok := false
		for _, n := range members {
			st, wasAcked := acked[n]
			if !wasAcked {
				st = state(n)
				// A node that did not ack (or the publisher, which
				// applies locally) is no proof when unverifiable.
				wasAcked = n == p.Node
			}
			if st == "ok" || st == "unverifiable" && wasAcked {
				ok = true
				break
			}
		}
		if !ok {
			flag(FalseAck, p.Node, p.Key, "the ack report names zone %s, where no node received the event", z)
		}
	}
	switch p.Kind {
	case Replicas:
		others := 0
		for _, n := range nodes {
			if n != p.Node {
				others++
			}
		}
		if others < p.Asked {
			flag(FalseAck, p.Node, p.Key, "succeeded with %d other nodes acknowledging, %d asked", others, p.Asked)
		}
	case Zones:
		if len(zones) < p.Asked {
			flag(FalseAck, p.Node, p.Key, "succeeded with %d zones acknowledging, %d asked", len(zones), p.Asked)
		}
	}
}

// checkLoss checks invariant 2 for the sent publish p on every
// subscription.
func checkLoss(res *Result, rec *Record, p *Publish, cfg Config, byNode map[string][]*stream,
	flag func(int, string, string, string, ...any)) {
	from, until := p.Start.Add(-cfg.Grace), p.End.Add(cfg.Settle)
	for _, n := range rec.Nodes {
		var owed []*stream
		if !disturbed(rec.Faults, p.Node, n.Name, from, until, cfg.Grace) {
			for _, s := range byNode[n.Name] {
				if s.openOver(p.Start, until) {
					owed = append(owed, s)
				}
			}
		}
		if len(owed) == 0 {
			res.Excused++
			continue
		}
		for _, s := range owed {
			res.Owed++
			switch {
			case len(s.byKey[p.Key]) > 0:
				res.Reached++
			case s.covered(p.Key, p.Node, p.Start):
				res.Covered++
			default:
				flag(SilentLoss, n.Name, p.Key, "a %s publish by %s (%s … %s) never reached the stream opened at %s, and no resync covered it",
					p.Kind, p.Node, stamp(p.Start), stamp(p.End), stamp(s.Opened))
			}
		}
	}
}

// disturbed reports whether a fault touched the pair (a, b) within
// [from, until], each fault stretched by grace past its end.
func disturbed(faults []Fault, a, b string, from, until time.Time, grace time.Duration) bool {
	for _, f := range faults {
		if f.From.After(until) || !f.To.IsZero() && f.To.Add(grace).Before(from) {
			continue
		}
		inA, inB := slices.Contains(f.Nodes, a), slices.Contains(f.Nodes, b)
		if f.Kind == Cut {
			if inA != inB {
				return true
			}
		} else if inA || inB {
			return true
		}
	}
	return false
}

func uniq(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// stamp prints a time of the run compactly, for violations.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("15:04:05.000")
}
