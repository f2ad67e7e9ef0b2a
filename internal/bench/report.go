package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Seconds is a duration in seconds, as JSON numbers.
type Seconds float64

// Report is what one run measured.
type Report struct {
	Quick    bool              `json:"quick"`
	Started  time.Time         `json:"started"`
	Elapsed  Seconds           `json:"elapsed_s"`
	Machine  Machine           `json:"machine"`
	Servers  map[string]string `json:"servers"`
	Settings Settings          `json:"settings"`
	Systems  []*System         `json:"systems"`
	// Rows are the table: one per figure and system, with the ratio to the
	// best alternative measured in the same run.
	Rows []Row `json:"rows"`
	// Targets are the mesh's goals (issue 14), checked against this run.
	Targets []Target `json:"targets"`
	// Errors lists the phases that failed, as "system: phase: error".
	Errors []string `json:"errors,omitempty"`
}

// Failed reports whether a phase failed (timings never fail a run).
func (r *Report) Failed() bool { return len(r.Errors) > 0 }

// System returns the system with the given ID, or nil.
func (r *Report) System(id string) *System {
	for _, s := range r.Systems {
		if s.ID == id {
			return s
		}
	}
	return nil
}

func (r *Report) add(s *System) { r.Systems = append(r.Systems, s) }

// Settings are the sizes the run used.
type Settings struct {
	LatencyOps       int    `json:"latency_ops"`
	WarmupOps        int    `json:"warmup_ops"`
	ThroughputEvents int    `json:"throughput_events"`
	BurstEvents      int    `json:"burst_events"`
	Receivers        int    `json:"receivers"`
	KeyBytes         [2]int `json:"key_bytes"` // shortest and longest key
}

// System is what the run measured of one system.
type System struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Missing says why the system was not measured (not an error: a
	// server that is not installed, an interrupted run).
	Missing string `json:"missing,omitempty"`
	// Error is the first phase error.
	Error string `json:"error,omitempty"`
	// CPUScope says which processes the CPU figures include.
	CPUScope string `json:"cpu_scope,omitempty"`

	Eventual *Latency `json:"eventual,omitempty"`
	Await    *Latency `json:"await,omitempty"`
	Topology *Latency `json:"topology,omitempty"`

	Throughput *Flood `json:"throughput,omitempty"`
	Burst4     *Flood `json:"burst4,omitempty"`
	Burst2     *Flood `json:"burst2,omitempty"`

	// UnbatchedBytes and UnbatchedMessages are what the publisher sent
	// per invalidation in the eventual-latency phase, one event at a time
	// on an idle bus: the unbatched frame (times the receivers, for the
	// mesh, which sends one to each).
	UnbatchedBytes    float64 `json:"unbatched_bytes,omitempty"`
	UnbatchedMessages float64 `json:"unbatched_messages,omitempty"`

	Notes []string `json:"notes,omitempty"`
}

func (s *System) fail(phase string, err error) {
	if s.Error == "" {
		s.Error = phase + ": " + err.Error()
	}
}

func (s *System) note(format string, args ...any) {
	s.Notes = append(s.Notes, fmt.Sprintf(format, args...))
}

// Latency is one latency phase.
type Latency struct {
	// What the operation is for this system.
	What string `json:"what"`
	Ops  int    `json:"ops"`
	// Failed counts operations that returned an error or timed out.
	Failed int     `json:"failed,omitempty"`
	P50    float64 `json:"p50_us"`
	P99    float64 `json:"p99_us"`
	Mean   float64 `json:"mean_us"`
	// CDF holds the 0th to 100th percentiles, in µs.
	CDF []float64 `json:"cdf_us"`
	// CutShort is set when the phase's time bound ended it early.
	CutShort bool `json:"cut_short,omitempty"`
}

// newLatency summarises samples.
func newLatency(what string, samples []time.Duration, failed int, cutShort bool) *Latency {
	l := &Latency{What: what, Ops: len(samples), Failed: failed, CutShort: cutShort}
	if len(samples) == 0 {
		return l
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	l.P50, l.P99 = us(quantile(s, 0.50)), us(quantile(s, 0.99))
	l.Mean = us(sum / time.Duration(len(s)))
	l.CDF = make([]float64, 101)
	for i := range l.CDF {
		l.CDF[i] = us(quantile(s, float64(i)/100))
	}
	return l
}

// quantile is the nearest-rank q-quantile of sorted samples (q = 0: the
// smallest).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// Flood is one throughput or burst phase: the publisher offers Events as
// fast as it can, without awaiting.
type Flood struct {
	Receivers int `json:"receivers"`
	Events    int `json:"events"`
	// PublishErrors counts publishes the bus refused (backpressure).
	PublishErrors int `json:"publish_errors,omitempty"`
	// PublishSeconds is how long the publisher took to offer them all.
	PublishSeconds Seconds `json:"publish_s"`
	// Seconds runs from the first publish until every receiver had every
	// event (Complete), or until the last delivery.
	Seconds  Seconds `json:"s"`
	Complete bool    `json:"complete"`
	// CutShort is set when the phase's time bound ended the wait.
	CutShort bool `json:"cut_short,omitempty"`
	// Delivered counts each receiver's events; Lost sums what they miss;
	// Resyncs counts the resyncs they received instead.
	Delivered []uint64 `json:"delivered"`
	Lost      uint64   `json:"lost"`
	Resyncs   uint64   `json:"resyncs"`
	// Rate is the slowest receiver's events per second.
	Rate float64 `json:"rate_per_receiver"`
	// CPUSeconds is the CPU time of the processes of the system's
	// CPUScope during the phase; CPUPerMillion is that per million
	// events delivered (summed over receivers).
	CPUSeconds    float64 `json:"cpu_s"`
	CPUPerMillion float64 `json:"cpu_s_per_million"`
	// WireBytes and WireMessages are what the publisher sent per
	// invalidation: datagrams (all receivers) or broker messages.
	WireBytes    float64 `json:"wire_bytes_per_invalidation"`
	WireMessages float64 `json:"wire_messages_per_invalidation"`
}

// Row is one line of the table.
type Row struct {
	Figure string  `json:"figure"`
	Unit   string  `json:"unit"`
	System string  `json:"system"`
	Value  float64 `json:"value"`
	// Ratio is Value over the best alternative's (the best other system
	// measured in the same run, the floor excluded), or 0 without one;
	// Best names it.
	Ratio float64 `json:"ratio,omitempty"`
	Best  string  `json:"best_alternative,omitempty"`
	// Valid is false for a figure that does not stand for what it says
	// (a burst that lost events has no time until all had all): it shows
	// with a mark and is never the best alternative.
	Valid bool   `json:"valid"`
	Note  string `json:"note,omitempty"`
}

// figure is one figure of the table.
type figure struct {
	name, unit string
	lower      bool // lower is better
	get        func(*System) (v float64, ok, valid bool, note string)
}

func latencyFig(name string, pick func(*System) *Latency, p99 bool) figure {
	return figure{name: name, unit: "µs", lower: true, get: func(s *System) (float64, bool, bool, string) {
		l := pick(s)
		if l == nil || l.Ops == 0 {
			return 0, false, false, ""
		}
		note := l.What
		if l.Failed > 0 {
			note += fmt.Sprintf("; %d failed", l.Failed)
		}
		if p99 {
			return l.P99, true, true, note
		}
		return l.P50, true, true, note
	}}
}

func floodFig(name, unit string, lower bool, pick func(*System) *Flood, val func(*Flood) (float64, bool)) figure {
	return figure{name: name, unit: unit, lower: lower, get: func(s *System) (float64, bool, bool, string) {
		f := pick(s)
		if f == nil || f.Events == 0 {
			return 0, false, false, ""
		}
		v, valid := val(f)
		note := ""
		if !f.Complete {
			note = fmt.Sprintf("incomplete: %d lost, %d resyncs", f.Lost, f.Resyncs)
		}
		return v, true, valid, note
	}}
}

func figures() []figure {
	ev := func(s *System) *Latency { return s.Eventual }
	aw := func(s *System) *Latency { return s.Await }
	tp := func(s *System) *Latency { return s.Topology }
	thr := func(s *System) *Flood { return s.Throughput }
	b4 := func(s *System) *Flood { return s.Burst4 }
	b2 := func(s *System) *Flood { return s.Burst2 }
	return []figure{
		latencyFig("eventual p50, to 4", ev, false),
		latencyFig("eventual p99, to 4", ev, true),
		latencyFig("PublishAndAwait(4) p50", aw, false),
		latencyFig("PublishAndAwait(4) p99", aw, true),
		latencyFig("PublishAndAwaitTopology(3) p50", tp, false),
		latencyFig("PublishAndAwaitTopology(3) p99", tp, true),
		floodFig("throughput per receiver (slowest of 4)", "inv/s", false, thr, func(f *Flood) (float64, bool) { return f.Rate, f.Complete }),
		floodFig("burst to 4: all have all", "s", true, b4, func(f *Flood) (float64, bool) { return float64(f.Seconds), f.Complete }),
		floodFig("burst to 4: lost + resyncs", "events", true, b4, func(f *Flood) (float64, bool) { return float64(f.Lost + f.Resyncs), true }),
		floodFig("burst to 2: all have all", "s", true, b2, func(f *Flood) (float64, bool) { return float64(f.Seconds), f.Complete }),
		floodFig("burst to 2: lost + resyncs", "events", true, b2, func(f *Flood) (float64, bool) { return float64(f.Lost + f.Resyncs), true }),
		floodFig("burst to 4: publisher's bytes per invalidation", "B", true, b4, func(f *Flood) (float64, bool) { return f.WireBytes, true }),
		floodFig("burst to 4: publisher's messages per invalidation", "msgs", true, b4, func(f *Flood) (float64, bool) { return f.WireMessages, true }),
		floodFig("CPU per million delivered (throughput)", "s", true, thr, func(f *Flood) (float64, bool) { return f.CPUPerMillion, f.CPUPerMillion > 0 }),
	}
}

// finish builds the rows and the targets from the systems.
func (r *Report) finish() {
	r.Rows = nil
	for _, f := range figures() {
		var rows []Row
		for _, s := range r.Systems {
			if s.Missing != "" {
				continue
			}
			v, ok, valid, note := f.get(s)
			if !ok {
				continue
			}
			rows = append(rows, Row{Figure: f.name, Unit: f.unit, System: s.ID, Value: v, Valid: valid, Note: note})
		}
		for i := range rows {
			if rows[i].System == Floor {
				continue
			}
			best := -1
			for j, o := range rows {
				if j == i || o.System == Floor || !o.Valid {
					continue
				}
				if best < 0 || (f.lower && o.Value < rows[best].Value) || (!f.lower && o.Value > rows[best].Value) {
					best = j
				}
			}
			if best >= 0 && rows[best].Value > 0 {
				rows[i].Ratio, rows[i].Best = rows[i].Value/rows[best].Value, rows[best].System
			}
		}
		r.Rows = append(r.Rows, rows...)
	}
	r.Errors = nil
	for _, s := range r.Systems {
		if s.Error != "" {
			r.Errors = append(r.Errors, s.ID+": "+s.Error)
		}
	}
	r.Targets = targets(r)
}

// Target is one of the mesh's goals and how this run measured it.
type Target struct {
	Goal string `json:"goal"`
	// Ratio is the measured ratio the goal bounds, Limit the bound.
	Ratio float64 `json:"ratio"`
	Limit float64 `json:"limit"`
	// AtMost is true when Ratio must not exceed Limit, false when it must
	// reach it.
	AtMost bool `json:"at_most"`
	Met    bool `json:"met"`
	// Missing says why the goal could not be checked in this run.
	Missing string `json:"missing,omitempty"`
	Note    string `json:"note,omitempty"`
}

func targets(r *Report) []Target {
	get := func(id string) *System {
		s := r.System(id)
		if s == nil || s.Missing != "" {
			return nil
		}
		return s
	}
	mesh, floor, nats := get(Mesh), get(Floor), get(NATS)
	var ts []Target
	ratio := func(goal string, limit float64, atMost bool, num, den func() (float64, bool), note string) {
		t := Target{Goal: goal, Limit: limit, AtMost: atMost, Note: note}
		n, ok1 := num()
		d, ok2 := den()
		switch {
		case !ok1 || !ok2 || d == 0:
			t.Missing = "not measured in this run"
		default:
			t.Ratio = n / d
			t.Met = (atMost && t.Ratio <= limit) || (!atMost && t.Ratio >= limit)
		}
		ts = append(ts, t)
	}
	lat := func(s *System, pick func(*System) *Latency, p99 bool) func() (float64, bool) {
		return func() (float64, bool) {
			if s == nil {
				return 0, false
			}
			l := pick(s)
			if l == nil || l.Ops == 0 {
				return 0, false
			}
			if p99 {
				return l.P99, true
			}
			return l.P50, true
		}
	}
	ev := func(s *System) *Latency { return s.Eventual }
	aw := func(s *System) *Latency { return s.Await }
	tp := func(s *System) *Latency { return s.Topology }
	ratio("mesh PublishAndAwait(4) p50 ≤ 1.3 × the UDP floor", 1.3, true, lat(mesh, aw, false), lat(floor, aw, false), "")
	ratio("mesh PublishAndAwait(4) p50 ≤ 0.4 × NATS request with 4 replies", 0.4, true, lat(mesh, aw, false), lat(nats, aw, false), "")
	ratio("mesh eventual p50 ≤ 0.5 × NATS publish to 4", 0.5, true, lat(mesh, ev, false), lat(nats, ev, false), "")
	ratio("mesh eventual p99 ≤ NATS p99", 1, true, lat(mesh, ev, true), lat(nats, ev, true), "")
	ratio("mesh PublishAndAwaitTopology(3) p50 ≤ 1.5 × the UDP floor", 1.5, true, lat(mesh, tp, false), lat(floor, aw, false), "")

	tput := func(s *System) func() (float64, bool) {
		return func() (float64, bool) {
			if s == nil || s.Throughput == nil || s.Throughput.Rate == 0 {
				return 0, false
			}
			return s.Throughput.Rate, true
		}
	}
	note := ""
	if mesh != nil && mesh.Throughput != nil {
		note = fmt.Sprintf("mesh: %d lost, %d resyncs", mesh.Throughput.Lost, mesh.Throughput.Resyncs)
	}
	ratio("mesh throughput to each of 4 receivers ≥ 2 × NATS core's, none lost to resync", 2, false, tput(mesh), tput(nats), note)
	if n := len(ts) - 1; mesh != nil && mesh.Throughput != nil && !mesh.Throughput.Complete {
		ts[n].Met = false
	}
	cpu := func(s *System) func() (float64, bool) {
		return func() (float64, bool) {
			if s == nil || s.Throughput == nil || s.Throughput.CPUPerMillion == 0 {
				return 0, false
			}
			return s.Throughput.CPUPerMillion, true
		}
	}
	ratio("mesh CPU per delivered event ≤ 0.5 × NATS's (server and clients counted)", 0.5, true, cpu(mesh), cpu(nats), "")
	ratio("mesh bytes per invalidation in a burst ≤ 0.5 × the unbatched frame", 0.5, true,
		func() (float64, bool) {
			if mesh == nil || mesh.Burst4 == nil || mesh.Burst4.WireBytes == 0 {
				return 0, false
			}
			return mesh.Burst4.WireBytes, true
		},
		func() (float64, bool) {
			if mesh == nil || mesh.UnbatchedBytes == 0 {
				return 0, false
			}
			return mesh.UnbatchedBytes, true
		}, "")
	for _, b := range []string{NATSBridge, RedisBridge, KafkaBridge} {
		ratio(fmt.Sprintf("%s eventual p50 ≤ 1.3 × %s's", b, rawOf[b]), 1.3, true, lat(get(b), ev, false), lat(get(rawOf[b]), ev, false), "")
	}
	for _, n := range []int{4, 2} {
		pick := func(s *System) *Flood {
			if n == 4 {
				return s.Burst4
			}
			return s.Burst2
		}
		t := Target{Goal: fmt.Sprintf("mesh burst to %d: all delivered, in less time than NATS", n), Limit: 1, AtMost: true}
		switch {
		case mesh == nil || nats == nil || pick(mesh) == nil || pick(nats) == nil || pick(nats).Seconds == 0:
			t.Missing = "not measured in this run"
		default:
			m, k := pick(mesh), pick(nats)
			t.Ratio = float64(m.Seconds) / float64(k.Seconds)
			t.Met = m.Complete && t.Ratio < 1
			if !m.Complete {
				t.Note = fmt.Sprintf("mesh: %d lost, %d resyncs", m.Lost, m.Resyncs)
			} else if !k.Complete {
				t.Note = fmt.Sprintf("NATS: %d lost", k.Lost)
			}
		}
		ts = append(ts, t)
	}
	return ts
}

// sortedServers returns the servers' versions as "name version" lines.
func (r *Report) sortedServers() []string {
	var out []string
	for k, v := range r.Servers {
		out = append(out, k+" "+v)
	}
	slices.Sort(out)
	return out
}
