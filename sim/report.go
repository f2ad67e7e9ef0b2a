package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run measured. Times are simulated milliseconds
// (wall-clock time divided by the scale) unless named otherwise. Traffic
// is counted by the network itself, on the wire; deliveries and resyncs
// by subscriptions on every node; only FlowStalls is the buses' own
// count. It renders as a table (WriteTable) and as JSON (encoding/json).
type Report struct {
	Scenario    string   `json:"scenario"`
	Description string   `json:"description,omitempty"`
	Seed        uint64   `json:"seed"`
	TimeScale   float64  `json:"timeScale"`
	Nodes       int      `json:"nodes"`
	Zones       []string `json:"zones"`
	// Fanout is the fanout mode the nodes used ("direct" or "relay").
	Fanout string `json:"fanout"`
	// WallSeconds is the real time the run took, start to stop.
	WallSeconds float64 `json:"wallSeconds"`
	// ConvergeMs is how long the cluster took to start and converge.
	ConvergeMs float64 `json:"convergeMs"`
	DurationMs float64 `json:"durationMs"`
	// WindowMs is the delivery deadline of Delivery.Within.
	WindowMs float64 `json:"windowMs"`

	// Published counts events published (awaited ones included);
	// PublishErrors those whose publish call failed before sending;
	// Skipped those not published because the chosen node was down.
	Published     int `json:"published"`
	PublishErrors int `json:"publishErrors"`
	Skipped       int `json:"skipped"`

	// Delivery sums every node's; ByZone and ByNode split it.
	Delivery Delivery       `json:"delivery"`
	ByZone   []ZoneDelivery `json:"byZone"`
	ByNode   []NodeDelivery `json:"byNode"`

	// Latency is the delivery latency per pair of zones (the
	// publisher's, the receiver's), publishers' own deliveries aside.
	Latency []PairLatency `json:"latency"`
	// Acks is the latency of awaited publishes by mode; FailedAwaits
	// counts failed ones by reason ("fail-fast", "deadline", "closed",
	// "backpressure", "other"); FalseAcks counts successful ones that an
	// acknowledging node never delivered (there must be none).
	Acks         []AckLatency   `json:"acks"`
	FailedAwaits map[string]int `json:"failedAwaits"`
	FalseAcks    int            `json:"falseAcks"`

	// PerEvent is data-plane traffic per published event.
	PerEvent PerEvent `json:"perEvent"`
	// Network is everything the network carried while publishing and
	// settling.
	Network Stats `json:"network"`
	// Repairs counts repair datagrams (requests and "unavailable"
	// answers), Retransmissions events frames sent again, Resyncs the
	// resync events subscriptions received, all counted by the
	// simulation; FlowStalls is what the buses report of flow control
	// holding a publisher back.
	Repairs         uint64 `json:"repairs"`
	Retransmissions uint64 `json:"retransmissions"`
	Resyncs         int    `json:"resyncs"`
	FlowStalls      uint64 `json:"flowStalls"`

	// Faults are the faults' windows; Timeline counts publishes and
	// deliveries over time.
	Faults   []FaultWindow   `json:"faults"`
	Timeline []TimelinePoint `json:"timeline"`
}

// Delivery counts, over (subscription, event) pairs, what was expected
// and what happened. An event is expected on every subscription that was
// running and had joined when it was published and still ran a Window
// later.
type Delivery struct {
	Expected  int `json:"expected"`
	Delivered int `json:"delivered"`
	// Within is how many arrived within the window, Late how many after
	// it.
	Within int `json:"within"`
	Late   int `json:"late"`
	// Missing never arrived; Resynced of them were announced by a resync
	// naming their origin (or none) after they were published; Silent
	// were not: a lost invalidation nobody was told of.
	Missing    int     `json:"missing"`
	Resynced   int     `json:"resynced"`
	Silent     int     `json:"silent"`
	Duplicates int     `json:"duplicates"`
	Ratio      float64 `json:"ratio"`
	// RatioWithin is Within / Expected.
	RatioWithin float64 `json:"ratioWithin"`
}

func (d *Delivery) add(o Delivery) {
	d.Expected += o.Expected
	d.Delivered += o.Delivered
	d.Within += o.Within
	d.Late += o.Late
	d.Missing += o.Missing
	d.Resynced += o.Resynced
	d.Silent += o.Silent
	d.Duplicates += o.Duplicates
}

func (d *Delivery) finish() {
	if d.Expected > 0 {
		d.Ratio = float64(d.Delivered) / float64(d.Expected)
		d.RatioWithin = float64(d.Within) / float64(d.Expected)
	} else {
		d.Ratio, d.RatioWithin = 1, 1
	}
}

// ZoneDelivery is one zone's delivery.
type ZoneDelivery struct {
	Zone string `json:"zone"`
	Delivery
}

// NodeDelivery is one node's delivery, all its incarnations together.
type NodeDelivery struct {
	Node string `json:"node"`
	Zone string `json:"zone"`
	Delivery
}

// Latencies summarises a set of latencies, in milliseconds.
type Latencies struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	// CDF holds the 0th, 1st, … 100th percentiles, for plotting.
	CDF []float64 `json:"cdf,omitempty"`
}

// PairLatency is the delivery latency from one zone to another.
type PairLatency struct {
	From string `json:"from"`
	To   string `json:"to"`
	Latencies
}

// AckLatency is the latency of the awaited publishes of one mode
// ("replicas=2", "zones=3"), successful ones only, and their outcomes.
type AckLatency struct {
	Mode   string `json:"mode"`
	OK     int    `json:"ok"`
	Failed int    `json:"failed"`
	Latencies
}

// PerEvent divides the data plane's traffic by the events published.
type PerEvent struct {
	// EventDatagrams are first transmissions of events frames, within and
	// across zones; DataDatagrams all data-plane datagrams (events,
	// retransmissions, acks, repairs, digests, credit).
	EventDatagramsWithin float64 `json:"eventDatagramsWithin"`
	EventDatagramsAcross float64 `json:"eventDatagramsAcross"`
	EventBytesWithin     float64 `json:"eventBytesWithin"`
	EventBytesAcross     float64 `json:"eventBytesAcross"`
	DataDatagramsWithin  float64 `json:"dataDatagramsWithin"`
	DataDatagramsAcross  float64 `json:"dataDatagramsAcross"`
	DataBytesWithin      float64 `json:"dataBytesWithin"`
	DataBytesAcross      float64 `json:"dataBytesAcross"`
}

// FaultWindow is when a fault was in force.
type FaultWindow struct {
	Kind   string  `json:"kind"`
	Label  string  `json:"label"`
	FromMs float64 `json:"fromMs"`
	ToMs   float64 `json:"toMs"`
}

// TimelinePoint counts the events published and delivered (over all
// subscriptions) in one interval starting at AtMs.
type TimelinePoint struct {
	AtMs      float64 `json:"atMs"`
	Published int     `json:"published"`
	Delivered int     `json:"delivered"`
}

// JSON returns the report as indented JSON.
func (r *Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// summarize computes Latencies from samples in milliseconds.
func summarize(ms []float64) Latencies {
	if len(ms) == 0 {
		return Latencies{}
	}
	s := slices.Clone(ms)
	sort.Float64s(s)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	l := Latencies{Count: len(s), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: s[len(s)-1]}
	l.CDF = make([]float64, 101)
	for i := range l.CDF {
		l.CDF[i] = q(float64(i) / 100)
	}
	l.CDF[0] = s[0]
	return l
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteTable writes the report as text tables.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	line := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }

	line("scenario %s: %d nodes in %d zones (%s), fanout %s, seed %d, time scale %g",
		r.Scenario, r.Nodes, len(r.Zones), strings.Join(r.Zones, " "), r.Fanout, r.Seed, r.TimeScale)
	line("converged in %s, published for %s (simulated); %.1fs of wall-clock time",
		fmtMs(r.ConvergeMs), fmtMs(r.DurationMs), r.WallSeconds)
	line("published %d events (%d failed to publish, %d skipped: node down)", r.Published, r.PublishErrors, r.Skipped)
	line("")

	line("delivery (window %s)", fmtMs(r.WindowMs))
	p("zone\texpected\tdelivered\twithin\tmissing\tresynced\tsilent\tratio\twithin window\t\n")
	row := func(name string, d Delivery) {
		p("%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", name, d.Expected, d.Delivered, d.Within, d.Missing, d.Resynced, d.Silent, pct(d.Ratio), pct(d.RatioWithin))
	}
	for _, z := range r.ByZone {
		row(z.Zone, z.Delivery)
	}
	row("all", r.Delivery)
	if len(r.ByNode) <= 32 {
		for _, n := range r.ByNode {
			if n.Missing > 0 || n.Expected == 0 {
				row("  "+n.Node, n.Delivery)
			}
		}
	}
	line("")

	if len(r.Latency) > 0 {
		line("delivery latency (ms)")
		p("from\tto\tcount\tp50\tp90\tp99\tmax\t\n")
		for _, l := range r.Latency {
			p("%s\t%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t\n", l.From, l.To, l.Count, l.P50, l.P90, l.P99, l.Max)
		}
		line("")
	}
	if len(r.Acks) > 0 {
		line("awaited publishes (ms until acknowledged)")
		p("mode\tok\tfailed\tp50\tp90\tp99\tmax\t\n")
		for _, a := range r.Acks {
			p("%s\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t\n", a.Mode, a.OK, a.Failed, a.P50, a.P90, a.P99, a.Max)
		}
		reasons := make([]string, 0, len(r.FailedAwaits))
		for k, v := range r.FailedAwaits {
			reasons = append(reasons, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(reasons)
		if len(reasons) == 0 {
			reasons = []string{"none"}
		}
		line("failed awaits: %s; false acknowledgements: %d", strings.Join(reasons, ", "), r.FalseAcks)
		line("")
	}

	line("data traffic per event (counted on the wire)")
	p("\tdatagrams within\tdatagrams across\tbytes within\tbytes across\t\n")
	pe := r.PerEvent
	p("events\t%.2f\t%.2f\t%.0f\t%.0f\t\n", pe.EventDatagramsWithin, pe.EventDatagramsAcross, pe.EventBytesWithin, pe.EventBytesAcross)
	p("all data\t%.2f\t%.2f\t%.0f\t%.0f\t\n", pe.DataDatagramsWithin, pe.DataDatagramsAcross, pe.DataBytesWithin, pe.DataBytesAcross)
	line("repairs %d, retransmissions %d, resyncs %d, flow-control stalls %d (reported by the buses)",
		r.Repairs, r.Retransmissions, r.Resyncs, r.FlowStalls)
	d := r.Network.Drops
	line("dropped by the network: loss %d, rules %d, partition %d, queues %d, receivers %d, down %d, paused %d",
		d.Loss, d.Rule, d.Partition, d.Queue, d.Receiver, d.Down, d.Paused)
	if len(r.Faults) > 0 {
		line("")
		line("faults")
		for _, f := range r.Faults {
			line("  %s: %s – %s", f.Label, fmtMs(f.FromMs), fmtMs(f.ToMs))
		}
	}
	return tw.Flush()
}

func pct(f float64) string {
	if f >= 1 {
		return "100%"
	}
	return fmt.Sprintf("%.2f%%", 100*f)
}

func fmtMs(v float64) string {
	d := time.Duration(v * float64(time.Millisecond))
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}
