package mesh_test

// Tests of the benchmark harness: the scenarios of bench_test.go and
// bench_baseline_test.go run a few operations each, so that `go test`
// (with -race) exercises the very code the benchmarks time and checks what
// it measures, and the summary helpers are checked on known data.

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/membership/membershiptest"
)

func TestLatenciesQuantile(t *testing.T) {
	var l latencies
	if got := l.quantile(0.5); got != 0 {
		t.Fatalf("quantile of no samples = %v, want 0", got)
	}
	// Added out of order: quantile must sort.
	for i := 100; i >= 1; i-- {
		l.add(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0.01, 1 * time.Microsecond},
		{0.50, 50 * time.Microsecond},
		{0.99, 99 * time.Microsecond},
		{1.00, 100 * time.Microsecond},
	} {
		if got := l.quantile(c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
}

func TestPayloadSeqRoundTrip(t *testing.T) {
	buf := make([]byte, benchPayloadSize)
	p := payload(buf, 0xdeadbeef01)
	if len(p) != benchPayloadSize {
		t.Fatalf("payload is %d bytes, want %d", len(p), benchPayloadSize)
	}
	if got := payloadSeq(p); got != 0xdeadbeef01 {
		t.Fatalf("payloadSeq = %#x, want 0xdeadbeef01", got)
	}
	if got := payloadSeq(p[:7]); got != 0 {
		t.Fatalf("payloadSeq of a short message = %d, want 0", got)
	}
}

func TestPublishSplitCoversEveryIndexOnce(t *testing.T) {
	for _, pubs := range []int{1, 3, 4} {
		seen := make([]int32, 101)
		done := make(chan int, len(seen))
		err := publishSplit(len(seen), pubs, func(i int) error { done <- i; return nil })
		if err != nil {
			t.Fatal(err)
		}
		close(done)
		for i := range done {
			seen[i]++
		}
		for i, n := range seen {
			if n != 1 {
				t.Fatalf("publishers=%d: index %d published %d times", pubs, i, n)
			}
		}
	}
}

// TestAwaitThroughputReportsStall checks that a receiver that stops short
// ends the wait after the stall period with its real count, while one that
// got everything is reported complete.
func TestAwaitThroughputReportsStall(t *testing.T) {
	full, short := &warptest.Counter{}, &warptest.Counter{}
	full.Add(3) // counted before the run: the base
	base := []uint64{full.Count(), short.Count()}
	start := time.Now()
	go func() {
		full.Add(10)
		short.Add(4)
	}()
	res := awaitThroughput(start, 10, base, []*warptest.Counter{full, short}, 200*time.Millisecond)
	if res.complete {
		t.Fatal("a receiver got 4 of 10 events, yet the run is complete")
	}
	if res.delivered[0] != 10 || res.delivered[1] != 4 {
		t.Fatalf("delivered = %v, want [10 4]", res.delivered)
	}
	if res.lost() != 6 {
		t.Fatalf("lost = %d, want 6", res.lost())
	}
	if res.elapsed[0] <= 0 || res.elapsed[1] <= 0 || res.minRate() <= 0 {
		t.Fatalf("elapsed %v, rate %v: want positive", res.elapsed, res.minRate())
	}
}

// checkLatencies fails unless every sample is positive and p50 <= p99.
func checkLatencies(t *testing.T, what string, l *latencies, n int) {
	t.Helper()
	if len(l.d) != n {
		t.Fatalf("%s: %d samples, want %d", what, len(l.d), n)
	}
	for _, d := range l.d {
		if d <= 0 {
			t.Fatalf("%s: sample %v is not positive", what, d)
		}
	}
	if p50, p99 := l.quantile(0.5), l.quantile(0.99); p50 > p99 {
		t.Fatalf("%s: p50 %v > p99 %v", what, p50, p99)
	}
}

// checkComplete fails unless every receiver got every event of the run.
func checkComplete(t *testing.T, what string, res throughputResult) {
	t.Helper()
	if !res.complete || res.lost() != 0 {
		t.Fatalf("%s: sent %d, delivered %v (lost %d)", what, res.sent, res.delivered, res.lost())
	}
	if res.minRate() <= 0 {
		t.Fatalf("%s: rate %v", what, res.minRate())
	}
}

const smokeOps = 20

func TestBenchScenarioMesh(t *testing.T) {
	ignore := append([]goleak.Option{goleak.IgnoreCurrent()}, membershiptest.LeakOptions()...)
	t.Cleanup(func() { goleak.VerifyNone(t, ignore...) })
	m := startBenchMesh(t, nil)

	const key = "await:k"
	m.drain(t, key)
	var await latencies
	for range smokeOps {
		await.add(m.awaitOp(t, key))
	}
	checkLatencies(t, "PublishAndAwait(4)", &await, smokeOps)
	if got := m.pub.Metrics().AwaitSatisfied; got != smokeOps {
		t.Fatalf("AwaitSatisfied = %d, want %d", got, smokeOps)
	}

	p := m.newEventualProbe(t)
	var eventual latencies
	for i := range smokeOps {
		eventual.add(p.op(t, i))
	}
	checkLatencies(t, "eventual delivery", &eventual, smokeOps)

	tp := m.newThroughput(t)
	before := m.loss()
	for _, tc := range throughputPlans() {
		plan := tc.plan
		plan.window = min(plan.window, 500) // several windows in a short run
		checkComplete(t, "mesh throughput "+tc.name, tp.run(t, 2000, plan))
	}
	want := uint64(2000 * len(throughputPlans()))
	if l := m.loss().sub(before); l.published != want || l.frames == 0 || l.frames > l.published {
		t.Fatalf("publisher counted %d events in %d frames, want %d events in 1..%d frames", l.published, l.frames, want, want)
	}
}

func TestBenchScenarioUDP(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	for _, handoff := range []bool{false, true} {
		f := startUDPFanout(t, 4, handoff)
		var l latencies
		for range 50 {
			l.add(f.op(t))
		}
		checkLatencies(t, "udp fanout", &l, 50)
	}
}

func TestBenchScenarioNATS(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	nb := startNATS(t, 4)

	pub := nb.newPublishProbe(t, "smoke.publish")
	var lp latencies
	for range smokeOps {
		lp.add(pub.op(t, "smoke.publish"))
	}
	checkLatencies(t, "nats publish", &lp, smokeOps)

	req := nb.newRequestProbe(t, "smoke.request")
	var lr latencies
	for range smokeOps {
		lr.add(req.op(t, "smoke.request"))
	}
	checkLatencies(t, "nats request", &lr, smokeOps)

	tp := nb.newThroughput(t, "smoke.throughput")
	for _, tc := range throughputPlans() {
		plan := tc.plan
		plan.window = min(plan.window, 500)
		checkComplete(t, "nats throughput "+tc.name, tp.run(t, "smoke.throughput", 2000, plan))
	}
	if d := tp.dropped(); d != 0 {
		t.Fatalf("nats dropped %d messages", d)
	}
}
