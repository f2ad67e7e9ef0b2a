package chaos

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

var testCfg = Config{Grace: time.Second, Settle: 500 * time.Millisecond}

// cluster is four nodes in three zones.
var cluster = []Node{{"a1", "a"}, {"a2", "a"}, {"b1", "b"}, {"c1", "c"}}

// cleanRun is a run without faults where every event reached everyone:
// a plain publish by a1 at 1s, an awaited one (2 replicas) by b1 at 2s and
// one for 3 zones by c1 at 3s.
func cleanRun() *Record {
	rec := &Record{Nodes: cluster}
	rec.Publishes = []Publish{
		{Node: "a1", Key: "k1", Kind: Plain, Start: at(1000), End: at(1001)},
		{Node: "b1", Key: "k2", Kind: Replicas, Asked: 2, Start: at(2000), End: at(2010), AckedNodes: []string{"a1", "c1"}},
		{Node: "c1", Key: "k3", Kind: Zones, Asked: 3, Start: at(3000), End: at(3020),
			AckedNodes: []string{"a2", "b1"}, AckedZones: []string{"a", "b", "c"}},
	}
	for _, n := range cluster {
		s := Stream{Node: n.Name, Opened: at(0)}
		for _, p := range rec.Publishes {
			s.Events = append(s.Events, Delivery{At: p.Start.Add(5 * time.Millisecond), ID: "id-" + p.Key, Key: p.Key, Op: OpInvalidate, Origin: p.Node})
		}
		rec.Streams = append(rec.Streams, s)
	}
	rec.Samples = []Sample{{Node: "a1", At: at(4000), Goroutines: 40, MemoryBytes: 30 << 20}}
	return rec
}

// stream returns node's first stream in rec.
func streamOf(rec *Record, node string) *Stream {
	for i := range rec.Streams {
		if rec.Streams[i].Node == node {
			return &rec.Streams[i]
		}
	}
	panic("no stream of " + node)
}

// drop removes the delivery of key from node's stream.
func drop(rec *Record, node, key string) {
	s := streamOf(rec, node)
	out := s.Events[:0]
	for _, d := range s.Events {
		if d.Key != key {
			out = append(out, d)
		}
	}
	s.Events = out
}

func resyncOn(rec *Record, node string, ms int, key, origin string) {
	s := streamOf(rec, node)
	s.Events = append(s.Events, Delivery{At: at(ms), ID: "r", Key: key, Op: OpResync, Origin: origin})
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*Record)
		want   [5]int // violations by invariant
	}{
		{"clean run", func(*Record) {}, [5]int{}},

		// Invariant 1.
		{"acked node never received the event", func(r *Record) { drop(r, "c1", "k2") }, [5]int{FalseAck: 1, SilentLoss: 1}},
		{"acked node covered by a later resync", func(r *Record) {
			drop(r, "c1", "k2")
			resyncOn(r, "c1", 2300, "", "")
		}, [5]int{}},
		{"acked node unknown", func(r *Record) { r.Publishes[1].AckedNodes = append(r.Publishes[1].AckedNodes, "x9") }, [5]int{FalseAck: 1}},
		{"fewer replicas than asked", func(r *Record) { r.Publishes[1].AckedNodes = []string{"a1"} }, [5]int{FalseAck: 1}},
		{"the publisher does not count as a replica", func(r *Record) { r.Publishes[1].AckedNodes = []string{"a1", "b1"} }, [5]int{FalseAck: 1}},
		{"fewer zones than asked", func(r *Record) { r.Publishes[2].AckedZones = []string{"a", "c"} }, [5]int{FalseAck: 1}},
		{"acked zone where nobody received it", func(r *Record) {
			drop(r, "b1", "k3")
			r.Publishes[2].AckedNodes = []string{"a2"}
		}, [5]int{FalseAck: 1, SilentLoss: 1}},
		{"acked zone unknown", func(r *Record) { r.Publishes[2].AckedZones = append(r.Publishes[2].AckedZones, "z") }, [5]int{FalseAck: 1}},
		{"acked node restarted mid-call is unverifiable", func(r *Record) {
			drop(r, "c1", "k2")
			s := streamOf(r, "c1")
			s.Closed = at(2001)
			r.Streams = append(r.Streams, Stream{Node: "c1", Opened: at(2005), Events: []Delivery{{At: at(3001), ID: "id-k3", Key: "k3", Op: OpInvalidate, Origin: "c1"}}})
			r.Faults = []Fault{{Kind: Kill, Nodes: []string{"c1"}, From: at(2001), To: at(2004)}}
		}, [5]int{}},
		{"a failed await is not held to its report", func(r *Record) {
			drop(r, "c1", "k2")
			r.Publishes[1].Err = ReasonDeadline
			r.Faults = []Fault{{Kind: Pause, Nodes: []string{"c1"}, From: at(1900), To: at(2600)}}
		}, [5]int{}},

		// Invariant 2.
		{"lost plain event", func(r *Record) { drop(r, "b1", "k1") }, [5]int{SilentLoss: 1}},
		{"the publisher's own subscription is owed too", func(r *Record) { drop(r, "a1", "k1") }, [5]int{SilentLoss: 1}},
		{"resync after the publish covers", func(r *Record) {
			drop(r, "b1", "k1")
			resyncOn(r, "b1", 1500, "", "a1")
		}, [5]int{}},
		{"resync before the publish does not cover", func(r *Record) {
			drop(r, "b1", "k1")
			resyncOn(r, "b1", 900, "", "")
		}, [5]int{SilentLoss: 1}},
		{"resync naming another origin does not cover", func(r *Record) {
			drop(r, "b1", "k1")
			resyncOn(r, "b1", 1500, "", "c1")
		}, [5]int{SilentLoss: 1}},
		{"resync of a prefix of the key covers", func(r *Record) {
			drop(r, "b1", "k1")
			resyncOn(r, "b1", 1500, "k", "")
		}, [5]int{}},
		{"resync of another prefix does not cover", func(r *Record) {
			drop(r, "b1", "k1")
			resyncOn(r, "b1", 1500, "x", "")
		}, [5]int{SilentLoss: 1}},
		{"paused receiver is excused", func(r *Record) {
			drop(r, "b1", "k1")
			r.Faults = []Fault{{Kind: Pause, Nodes: []string{"b1"}, From: at(1100), To: at(1200)}}
		}, [5]int{}},
		{"fault ended more than grace before is no excuse", func(r *Record) {
			drop(r, "b1", "k1")
			r.Faults = []Fault{{Kind: Pause, Nodes: []string{"b1"}, From: at(-3000), To: at(-1100)}}
		}, [5]int{SilentLoss: 1}},
		{"fault ended within grace excuses", func(r *Record) {
			drop(r, "b1", "k1")
			r.Faults = []Fault{{Kind: Pause, Nodes: []string{"b1"}, From: at(-500), To: at(100)}}
		}, [5]int{}},
		{"fault after the settle time is no excuse", func(r *Record) {
			drop(r, "b1", "k1")
			r.Faults = []Fault{{Kind: Kill, Nodes: []string{"b1"}, From: at(1600), To: at(1700)}}
		}, [5]int{SilentLoss: 1}},
		{"killed publisher excuses its event everywhere", func(r *Record) {
			drop(r, "b1", "k1")
			drop(r, "c1", "k1")
			r.Faults = []Fault{{Kind: Kill, Nodes: []string{"a1"}, From: at(1002)}}
		}, [5]int{}},
		{"cut excuses pairs across it", func(r *Record) {
			drop(r, "c1", "k1")
			r.Faults = []Fault{{Kind: Cut, Nodes: []string{"c1"}, From: at(500), To: at(1500)}}
		}, [5]int{}},
		{"cut does not excuse pairs on one side", func(r *Record) {
			drop(r, "a2", "k1")
			r.Faults = []Fault{{Kind: Cut, Nodes: []string{"c1"}, From: at(500), To: at(1500)}}
		}, [5]int{SilentLoss: 1}},
		{"stream opened after the publish is not owed it", func(r *Record) {
			drop(r, "b1", "k1")
			streamOf(r, "b1").Opened = at(1000).Add(time.Microsecond)
		}, [5]int{}},
		{"stream closed within the settle time is not owed it", func(r *Record) {
			drop(r, "b1", "k1")
			streamOf(r, "b1").Closed = at(1400)
		}, [5]int{}},
		{"stream closed after the settle time is owed it", func(r *Record) {
			drop(r, "b1", "k1")
			streamOf(r, "b1").Closed = at(1600)
		}, [5]int{SilentLoss: 1}},
		{"failed fast: nothing owed", func(r *Record) {
			drop(r, "a1", "k2")
			r.Publishes[1].Err = ReasonFailFast
		}, [5]int{}},
		{"timed out await: still owed", func(r *Record) {
			drop(r, "a2", "k2")
			r.Publishes[1].Err = ReasonDeadline
		}, [5]int{SilentLoss: 1}},
		{"unreachable publisher: nothing owed", func(r *Record) {
			drop(r, "a2", "k1")
			r.Publishes[0].Err = ReasonUnreachable
		}, [5]int{}},

		// Invariant 3.
		{"duplicate on one stream", func(r *Record) {
			s := streamOf(r, "a2")
			s.Events = append(s.Events, s.Events[0])
		}, [5]int{Duplicate: 1}},
		{"same event on two streams of a node", func(r *Record) {
			s := *streamOf(r, "a2")
			r.Streams = append(r.Streams, s)
		}, [5]int{}},

		// Invariant 4.
		{"crash", func(r *Record) { r.Exits = []Exit{{Node: "b1", At: at(2500), Detail: "signal: segmentation fault"}} }, [5]int{CrashOrLimits: 1}},
		{"goroutines over the ceiling", func(r *Record) {
			r.Samples = append(r.Samples, Sample{Node: "c1", At: at(2000), Goroutines: MaxGoroutines + 1})
		}, [5]int{CrashOrLimits: 1}},
		{"memory over the ceiling", func(r *Record) {
			r.Samples = append(r.Samples, Sample{Node: "c1", At: at(2000), MemoryBytes: MaxMemoryBytes + 1})
		}, [5]int{CrashOrLimits: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := cleanRun()
			c.change(rec)
			res := Check(rec, testCfg)
			if res.Summary.Violations != c.want {
				t.Errorf("violations by invariant %v, want %v:\n%v", res.Summary.Violations, c.want, res.Err())
			}
			if got := len(res.Violations); got != res.TotalViolations() {
				t.Errorf("%d violations listed, %d counted", got, res.TotalViolations())
			}
			if (res.Err() == nil) != (c.want == [5]int{}) {
				t.Errorf("Err() = %v with violations %v", res.Err(), c.want)
			}
		})
	}
}

// TestCheckFigures: the summary counts what the record holds.
func TestCheckFigures(t *testing.T) {
	rec := cleanRun()
	drop(rec, "b1", "k1")
	resyncOn(rec, "b1", 1500, "", "")
	rec.Publishes = append(rec.Publishes, Publish{Node: "a1", Key: "k4", Kind: Replicas, Asked: 3, Start: at(3500), End: at(3500), Err: ReasonFailFast})
	s := streamOf(rec, "c1")
	s.Events = append(s.Events, Delivery{At: at(3600), ID: "zz", Key: "nobody's", Op: OpInvalidate})
	res := Check(rec, testCfg)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	sm := res.Summary
	checks := []struct {
		name      string
		got, want int
	}{
		{"publishes", sm.Publishes, 4},
		{"plain", sm.ByKind[Plain], 1},
		{"replicas", sm.ByKind[Replicas], 2},
		{"zones", sm.ByKind[Zones], 1},
		{"sent", sm.Sent, 3},
		{"awaited ok", sm.AwaitedOK, 2},
		{"fail fast", sm.Failures[ReasonFailFast], 1},
		{"deliveries", sm.Deliveries, 4*3 - 1 + 1},
		{"stray", sm.Stray, 1},
		{"resyncs", sm.Resyncs, 1},
		{"owed", sm.Owed, 12},
		{"reached", sm.Reached, 11},
		{"covered", sm.Covered, 1},
		{"ack checks", sm.AckChecks, 4},
		{"peak goroutines", sm.PeakGoroutines, 40},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
	var b bytes.Buffer
	if err := res.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"events published", "4 (plain 1, replicas 2, zones 1); 3 sent",
		"awaited successes", "failures by reason", "fail_fast 1",
		"deliveries", "resyncs", "violations: silent loss", "\nviolations  ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(out), " 0") {
		t.Errorf("the table's last line is not violations 0:\n%s", out)
	}
	t.Logf("\n%s", out)
}

// TestCheckErrListsViolations: Err names each breach and bounds its length.
func TestCheckErrListsViolations(t *testing.T) {
	rec := cleanRun()
	for _, n := range []string{"a2", "b1", "c1"} {
		drop(rec, n, "k1")
	}
	res := Check(rec, testCfg)
	err := res.Err()
	if err == nil || !strings.Contains(err.Error(), "3 violations") || !strings.Contains(err.Error(), `node c1 key "k1"`) {
		t.Fatalf("Err() = %v", err)
	}
	for i := range 40 {
		res.Violations = append(res.Violations, Violation{Invariant: Duplicate, Node: "x", Key: string(rune('a' + i%26))})
	}
	if err := res.Err(); !strings.Contains(err.Error(), "… and 23 more") {
		t.Errorf("a long list is not cut short: %v", err)
	}
}
