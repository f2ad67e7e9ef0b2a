package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warpmesh/warp/membership/membershiptest"
)

// leakOptions are the goroutines that may outlive a run: memberlist's
// short-lived stragglers and sarama's go-metrics goroutine, which never
// exits.
func leakOptions() []goleak.Option {
	return append(membershiptest.LeakOptions(),
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

// testSizes are a quick run cut down further: the test checks that every
// phase produces its figures, not how fast anything is.
func testSizes() sizes {
	sz := Config{Quick: true}.sizes()
	sz.latencyOps, sz.warmupOps = 20, 5
	sz.throughput, sz.burst = 3000, 2000
	sz.stall = 500 * time.Millisecond
	sz.latency, sz.flood = 20*time.Second, 30*time.Second
	sz.setup, sz.budget = 60*time.Second, 10*time.Minute
	return sz
}

// TestRunProducesEveryFigure runs every system in a cut-down quick run
// and checks that each phase produced figures and the report is whole.
func TestRunProducesEveryFigure(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, append(leakOptions(), goleak.IgnoreCurrent())...) })
	var progress bytes.Buffer
	rep, err := run(context.Background(), Config{Quick: true, Progress: &progress}, testSizes())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() {
		t.Fatalf("phases failed: %v", rep.Errors)
	}
	_, redisErr := exec.LookPath("redis-server")
	for _, id := range AllSystems {
		s := rep.System(id)
		if s == nil {
			t.Fatalf("%s: not in the report", id)
		}
		if s.Missing != "" {
			if (id == Redis || id == RedisBridge) && redisErr != nil {
				t.Logf("%s missing, as it should be without redis-server: %s", id, s.Missing)
				continue
			}
			t.Fatalf("%s: missing: %s", id, s.Missing)
		}
		checkLatency(t, id+" eventual", s.Eventual, 20)
		checkLatency(t, id+" await", s.Await, 20)
		switch id {
		case Floor:
			if s.Topology != nil || s.Throughput != nil || s.Burst4 != nil {
				t.Fatalf("floor: has figures it cannot have: %+v", s)
			}
			continue
		case Mesh, NATSBridge, RedisBridge, KafkaBridge:
			checkLatency(t, id+" topology", s.Topology, 20)
		default:
			if s.Topology != nil {
				t.Fatalf("%s: a topology latency for a raw client", id)
			}
		}
		checkFlood(t, id+" throughput", s.Throughput, 4, 3000)
		checkFlood(t, id+" burst to 4", s.Burst4, 4, 2000)
		checkFlood(t, id+" burst to 2", s.Burst2, 2, 2000)
		if s.UnbatchedBytes <= 0 || s.UnbatchedMessages <= 0 {
			t.Fatalf("%s: unbatched %v bytes, %v messages per invalidation", id, s.UnbatchedBytes, s.UnbatchedMessages)
		}
		if s.CPUScope == "" {
			t.Fatalf("%s: no CPU scope", id)
		}
	}
	if m := rep.System(Mesh); m.UnbatchedMessages < 4 || m.UnbatchedMessages > 5 {
		t.Fatalf("mesh: an idle publish sent %v datagrams, want one to each of 4 receivers", m.UnbatchedMessages)
	}
	// Every measured system has rows, and the mesh's have a ratio to an
	// alternative wherever one was measured.
	for _, row := range rep.Rows {
		if row.System == Mesh && row.Valid && row.Ratio <= 0 && !strings.Contains(row.Figure, "lost") {
			t.Errorf("mesh row %q has no ratio", row.Figure)
		}
	}
	if len(rep.Targets) < 10 {
		t.Fatalf("%d targets, want every goal of the issue", len(rep.Targets))
	}
	for _, tg := range rep.Targets {
		if tg.Missing != "" && !strings.Contains(tg.Goal, "redis") {
			t.Errorf("target %q not checked: %s", tg.Goal, tg.Missing)
		}
	}
	if !strings.Contains(progress.String(), "mesh: burst of 2000 to 2 receivers") {
		t.Fatalf("no progress line for the mesh's last phase:\n%s", progress.String())
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"vs best alternative", "eventual p50, to 4", "PublishAndAwaitTopology(3) p50", "targets of the mesh"} {
		if !strings.Contains(table.String(), want) {
			t.Fatalf("the table lacks %q:\n%s", want, table.String())
		}
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Systems) != len(rep.Systems) || len(back.Rows) != len(rep.Rows) {
		t.Fatalf("JSON round trip: %d systems and %d rows, want %d and %d", len(back.Systems), len(back.Rows), len(rep.Systems), len(rep.Rows))
	}
}

func checkLatency(t *testing.T, what string, l *Latency, ops int) {
	t.Helper()
	if l == nil {
		t.Fatalf("%s: not measured", what)
	}
	if l.Ops+l.Failed != ops || l.Ops == 0 {
		t.Fatalf("%s: %d ops and %d failed, want %d in all", what, l.Ops, l.Failed, ops)
	}
	if l.P50 <= 0 || l.P50 > l.P99 || len(l.CDF) != 101 || l.CDF[0] > l.P50 || l.CDF[100] < l.P99 {
		t.Fatalf("%s: p50 %v, p99 %v, CDF of %d points: not a distribution", what, l.P50, l.P99, len(l.CDF))
	}
}

func checkFlood(t *testing.T, what string, f *Flood, receivers, events int) {
	t.Helper()
	if f == nil {
		t.Fatalf("%s: not measured", what)
	}
	if f.Receivers != receivers || f.Events != events || len(f.Delivered) != receivers {
		t.Fatalf("%s: %d receivers, %d events, delivered %v; want %d and %d", what, f.Receivers, f.Events, f.Delivered, receivers, events)
	}
	var got uint64
	for _, n := range f.Delivered {
		got += n
	}
	if got == 0 || f.Rate <= 0 || f.Seconds <= 0 {
		t.Fatalf("%s: delivered %v at %v/s in %v s", what, f.Delivered, f.Rate, f.Seconds)
	}
	if f.Lost != uint64(receivers*events)-got {
		t.Fatalf("%s: lost %d, but %d of %d were delivered", what, f.Lost, got, receivers*events)
	}
	if f.Complete != (f.Lost == 0) {
		t.Fatalf("%s: complete %v with %d lost", what, f.Complete, f.Lost)
	}
	if f.WireBytes <= 0 || f.WireMessages <= 0 {
		t.Fatalf("%s: %v bytes and %v messages per invalidation", what, f.WireBytes, f.WireMessages)
	}
}

// TestRunRejectsUnknownSystem: a bad Config is Run's only error.
func TestRunRejectsUnknownSystem(t *testing.T) {
	if _, err := Run(context.Background(), Config{Systems: []string{"mesh", "zeromq"}}); err == nil || !strings.Contains(err.Error(), "zeromq") {
		t.Fatalf("err = %v, want one naming zeromq", err)
	}
}

// TestRunOutOfBudgetSkips: a run whose budget is spent measures nothing,
// says so, and fails nothing (a timing never fails a run).
func TestRunOutOfBudgetSkips(t *testing.T) {
	sz := testSizes()
	sz.budget = time.Nanosecond
	rep, err := run(context.Background(), Config{Systems: []string{Floor}}, sz)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.System(Floor)
	if rep.Failed() || s == nil || s.Eventual != nil || s.Await != nil {
		t.Fatalf("errors %v, floor %+v: want no figure and no error", rep.Errors, s)
	}
	if !slices.ContainsFunc(s.Notes, func(n string) bool { return strings.Contains(n, "budget") }) {
		t.Fatalf("notes %v do not say the budget was spent", s.Notes)
	}
}

// TestRatiosAgainstBestAlternative checks the table's ratio column and the
// targets on made-up figures.
func TestRatiosAgainstBestAlternative(t *testing.T) {
	lat := func(p50, p99 float64) *Latency { return &Latency{Ops: 1, P50: p50, P99: p99} }
	flood := func(rate, secs float64, lost uint64) *Flood {
		return &Flood{Events: 10, Receivers: 4, Rate: rate, Seconds: Seconds(secs), Complete: lost == 0, Lost: lost, CPUPerMillion: 1, WireBytes: 10, WireMessages: 0.1}
	}
	rep := &Report{Systems: []*System{
		{ID: Floor, Eventual: lat(10, 20), Await: lat(20, 40)},
		{ID: Mesh, Eventual: lat(30, 60), Await: lat(40, 80), Topology: lat(25, 50), Throughput: flood(2000, 1, 0), Burst4: flood(0, 1, 0), UnbatchedBytes: 40},
		{ID: NATS, Eventual: lat(60, 100), Await: lat(120, 200), Throughput: flood(1000, 2, 0), Burst4: flood(0, 2, 0)},
		{ID: NATSBridge, Eventual: lat(90, 150), Throughput: flood(5000, 0.5, 7), Burst4: flood(0, 0.5, 7)},
		{ID: Redis, Missing: "no redis-server"},
	}}
	rep.finish()
	row := func(fig, sys string) Row {
		for _, r := range rep.Rows {
			if r.Figure == fig && r.System == sys {
				return r
			}
		}
		t.Fatalf("no row %q for %s", fig, sys)
		return Row{}
	}
	if r := row("eventual p50, to 4", Mesh); r.Best != NATS || r.Ratio != 0.5 {
		t.Fatalf("mesh eventual: %.2f × %s, want 0.50 × nats (the floor is no alternative)", r.Ratio, r.Best)
	}
	if r := row("eventual p50, to 4", NATS); r.Best != Mesh || r.Ratio != 2 {
		t.Fatalf("nats eventual: %.2f × %s, want 2.00 × mesh", r.Ratio, r.Best)
	}
	if r := row("eventual p50, to 4", Floor); r.Ratio != 0 {
		t.Fatalf("the floor has a ratio: %+v", r)
	}
	// Higher is better for throughput, and an incomplete run is never the
	// best alternative.
	if r := row("throughput per receiver (slowest of 4)", Mesh); r.Best != NATS || r.Ratio != 2 {
		t.Fatalf("mesh throughput: %.2f × %s, want 2.00 × nats (nats-bridge lost events)", r.Ratio, r.Best)
	}
	if r := row("burst to 4: all have all", NATSBridge); r.Valid {
		t.Fatal("a burst that lost events is valid")
	}
	for _, r := range rep.Rows {
		if r.System == Redis {
			t.Fatalf("a row for a missing system: %+v", r)
		}
	}
	goal := func(prefix string) Target {
		for _, tg := range rep.Targets {
			if strings.HasPrefix(tg.Goal, prefix) {
				return tg
			}
		}
		t.Fatalf("no target %q", prefix)
		return Target{}
	}
	if tg := goal("mesh PublishAndAwait(4) p50 ≤ 1.3 × the UDP floor"); tg.Ratio != 2 || tg.Met {
		t.Fatalf("await vs floor: %+v", tg)
	}
	if tg := goal("mesh PublishAndAwaitTopology(3) p50 ≤ 1.5"); tg.Ratio != 1.25 || !tg.Met {
		t.Fatalf("topology vs floor: %+v", tg)
	}
	if tg := goal("mesh throughput"); tg.Ratio != 2 || !tg.Met {
		t.Fatalf("throughput: %+v", tg)
	}
	if tg := goal("mesh bytes per invalidation"); tg.Ratio != 0.25 || !tg.Met {
		t.Fatalf("batching: %+v", tg)
	}
	if tg := goal("redis-bridge eventual"); tg.Missing == "" {
		t.Fatalf("a target over missing systems was checked: %+v", tg)
	}
	if tg := goal("mesh burst to 4"); tg.Ratio != 0.5 || !tg.Met {
		t.Fatalf("burst: %+v", tg)
	}
}

func TestQuantileAndLatencySummary(t *testing.T) {
	var samples []time.Duration
	for i := 100; i >= 1; i-- { // out of order: the summary sorts
		samples = append(samples, time.Duration(i)*time.Microsecond)
	}
	l := newLatency("op", samples, 3, false)
	if l.P50 != 50 || l.P99 != 99 || l.Mean != 50.5 || l.CDF[0] != 1 || l.CDF[100] != 100 || l.Failed != 3 {
		t.Fatalf("summary %+v", l)
	}
	if empty := newLatency("op", nil, 0, true); empty.Ops != 0 || empty.CDF != nil || !empty.CutShort {
		t.Fatalf("empty summary %+v", empty)
	}
}

func TestKeysAreRealisticAndDistinct(t *testing.T) {
	k := newKeySet(10_000)
	seen := map[string]bool{}
	for i, s := range k.s {
		if len(s) < 20 || len(s) > 40 {
			t.Fatalf("key %q is %d bytes, want 20 to 40", s, len(s))
		}
		if seen[s] {
			t.Fatalf("key %q twice", s)
		}
		seen[s] = true
		if string(k.bytes(i)) != s {
			t.Fatalf("bytes of key %d differ", i)
		}
	}
}

// TestReceiverCountsAndSignals checks the receivers' bookkeeping: a flood
// signals at its target and counts resyncs; probing hands keys over
// instead.
func TestReceiverCountsAndSignals(t *testing.T) {
	rc := newReceiver()
	done := rc.reset(3)
	rc.deliver("a")
	rc.deliver("a")
	rc.resync()
	select {
	case <-done:
		t.Fatal("done after 2 of 3")
	default:
	}
	rc.deliver("b")
	<-done // closed at the third delivery: a hang fails the test by its timeout
	n, resyncs, last := rc.counts()
	if n != 3 || resyncs != 1 || last.IsZero() || rc.stored() != 2 {
		t.Fatalf("counts %d, %d resyncs, last %v, %d stored", n, resyncs, last, rc.stored())
	}
	rc.setProbing(true)
	rc.deliver("c")
	if got := <-rc.probe; got != "c" {
		t.Fatalf("probe got %q", got)
	}
	if n, _, _ := rc.counts(); n != 3 {
		t.Fatalf("a probed key was counted: %d", n)
	}
}

func TestPlotFormats(t *testing.T) {
	for file, want := range map[string]string{"a.png": "png", "b.SVG": "svg", "c.pdf": "pdf", "d.jpeg": "jpg"} {
		if got, err := PlotFormat(file); err != nil || got != want {
			t.Errorf("PlotFormat(%q) = %q, %v; want %q", file, got, err, want)
		}
	}
	if _, err := PlotFormat("e.gif"); err == nil {
		t.Error("PlotFormat accepted a .gif")
	}
	rep := &Report{Systems: []*System{
		{ID: Mesh, Eventual: newLatency("op", []time.Duration{time.Microsecond, 2 * time.Microsecond}, 0, false),
			Throughput: &Flood{Events: 1, Rate: 5, Complete: true}, Burst4: &Flood{Events: 1, Seconds: 1}},
	}}
	for _, format := range []string{"png", "svg"} {
		var out bytes.Buffer
		if err := rep.WritePlot(&out, format); err != nil {
			t.Fatal(err)
		}
		magic := map[string]string{"png": "\x89PNG", "svg": "<?xml"}[format]
		if !bytes.HasPrefix(out.Bytes(), []byte(magic)) {
			t.Fatalf("%s plot starts with %q", format, out.Bytes()[:min(8, out.Len())])
		}
	}
}
