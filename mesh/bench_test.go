package mesh_test

// Benchmarks of the mesh on a five-node loopback cluster, side by side with
// their baselines (bench_baseline_test.go): a raw UDP fanout with acks and
// an embedded NATS server. BENCHMARKS.md quotes them with the command that
// produced them; the targets of the mesh are ratios to the baselines
// measured in the same run.
//
// Every mesh benchmark runs on the default data-path options (encryption
// on, FanoutAuto, default batching) with profile "local" for membership:
// five nodes in zones a, a, b, b, c, publishing from a1, which shares its
// zone with a2. allocs/op counts the allocations of the whole process — the
// five nodes together — per operation.

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// benchTopology returns the cluster of every mesh benchmark: zones 2+2+1,
// the publisher (node 0) in a two-node zone.
func benchTopology() []bustest.Node {
	return []bustest.Node{
		{Name: "a1", Zone: "a", Region: "r1"},
		{Name: "a2", Zone: "a", Region: "r1"},
		{Name: "b1", Zone: "b", Region: "r1"},
		{Name: "b2", Zone: "b", Region: "r1"},
		{Name: "c1", Zone: "c", Region: "r1"},
	}
}

// benchKeys is how many distinct keys a benchmark cycles through.
const benchKeys = 1024

// benchMesh is the five-node loopback mesh of the benchmarks.
type benchMesh struct {
	buses []*mesh.MeshBus
	pub   *mesh.MeshBus   // node 0
	recv  []*mesh.MeshBus // the four others

	ctx    context.Context // ends the subscriptions of the benchmark
	cancel context.CancelFunc
	wg     sync.WaitGroup // subscription readers
}

// startBenchMesh starts the cluster on 127.0.0.1 and waits until every node
// sees every other one alive. Only the options a loopback cluster needs
// differ from the defaults (and the prefix buffer, at its maximum so a
// throughput receiver that falls behind for a moment does not overflow);
// tune, if not nil, may change more.
func startBenchMesh(tb testing.TB, tune func(*mesh.MeshOptions)) *benchMesh {
	tb.Helper()
	m := &benchMesh{}
	tb.Cleanup(func() {
		for _, b := range m.buses {
			_ = b.Close()
		}
	})
	key := []byte("0123456789abcdef0123456789abcdef")
	for _, n := range benchTopology() {
		o := mesh.MeshOptions{
			NodeName:     n.Name,
			BindAddr:     "127.0.0.1",
			Port:         -1,
			Zone:         n.Zone,
			Region:       n.Region,
			Label:        "bench",
			Profile:      "local",
			SecretKeys:   [][]byte{key},
			PrefixBuffer: syncbus.MaxPrefixBuffer,
		}
		// Every node joins all the nodes started before it: a join is a
		// full state exchange with each seed, so one lost gossip message
		// cannot leave a node unaware of another until the next periodic
		// exchange (seen on a loaded machine with a single seed).
		for _, prev := range m.buses {
			o.Peers = append(o.Peers, prev.Addr().String())
		}
		if tune != nil {
			tune(&o)
		}
		b, err := mesh.NewMeshBus(o)
		if err != nil {
			tb.Fatalf("node %s: %v", n.Name, err)
		}
		m.buses = append(m.buses, b)
	}
	benchConverged(tb, m.buses)
	m.pub, m.recv = m.buses[0], m.buses[1:]
	m.ctx, m.cancel = context.WithCancel(context.Background())
	tb.Cleanup(func() {
		m.cancel() // closes the subscriptions, which ends their readers
		m.wg.Wait()
	})
	return m
}

// benchConverged waits until every bus sees every node alive, and names
// what each one sees when that does not happen on a loaded machine.
func benchConverged(tb testing.TB, buses []*mesh.MeshBus) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		converged, seen := true, make([]string, 0, len(buses))
		for _, b := range buses {
			alive, others := 0, make([]string, 0, len(buses))
			for _, mb := range b.Members() {
				if mb.State.Alive() {
					alive++
				}
				others = append(others, mb.Name+"="+mb.State.String())
			}
			converged = converged && alive == len(buses)
			seen = append(seen, fmt.Sprintf("%s sees %v", b.Name(), others))
		}
		if converged {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the benchmark cluster did not converge in 30s: %s", strings.Join(seen, ", "))
		}
		<-tick.C
	}
}

// drain subscribes every receiver to key and reads the subscription in the
// background, as a cache would: an ack then means a real delivery.
func (m *benchMesh) drain(tb testing.TB, key string) {
	tb.Helper()
	for _, r := range m.recv {
		ch, err := r.Subscribe(m.ctx, key)
		if err != nil {
			tb.Fatal(err)
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for range ch {
			}
		}()
	}
}

// awaitOp runs one PublishAndAwait(key, 4) and returns how long it took.
// The background context makes the call bounded by the bus's AckTimeout
// without paying for a context per operation.
func (m *benchMesh) awaitOp(tb testing.TB, key string) time.Duration {
	t0 := time.Now()
	if err := m.pub.PublishAndAwait(context.Background(), key, len(m.recv)); err != nil {
		tb.Fatalf("PublishAndAwait: %v", err)
	}
	return time.Since(t0)
}

// eventualProbe times plain publishes until every receiver's subscription
// has the event.
type eventualProbe struct {
	pub   *mesh.MeshBus
	subs  []<-chan syncbus.Event
	keys  []string
	timer *time.Timer
}

func (m *benchMesh) newEventualProbe(tb testing.TB) *eventualProbe {
	tb.Helper()
	p := &eventualProbe{pub: m.pub, keys: benchKeyNames("ev:")}
	for _, r := range m.recv {
		ch, err := r.SubscribePrefix(m.ctx, "ev:")
		if err != nil {
			tb.Fatal(err)
		}
		p.subs = append(p.subs, ch)
	}
	p.timer = time.NewTimer(time.Hour)
	p.timer.Stop()
	tb.Cleanup(func() { p.timer.Stop() })
	return p
}

// op publishes key i and waits until all receivers got it. Each receiver
// must get exactly this event next: a stale, duplicated or resync event
// fails the benchmark.
func (p *eventualProbe) op(tb testing.TB, i int) time.Duration {
	key := p.keys[i%len(p.keys)]
	t0 := time.Now()
	if err := p.pub.Publish(context.Background(), key); err != nil {
		tb.Fatalf("Publish: %v", err)
	}
	p.timer.Reset(benchOpTimeout)
	for r, ch := range p.subs {
		select {
		case ev, ok := <-ch:
			if !ok {
				tb.Fatalf("receiver %d: subscription closed", r)
			}
			if ev.Key != key || ev.Op != syncbus.OpInvalidate {
				tb.Fatalf("receiver %d: got %v %q, want the invalidation of %q", r, ev.Op, ev.Key, key)
			}
		case <-p.timer.C:
			tb.Fatalf("receiver %d: no event within %v", r, benchOpTimeout)
		}
	}
	d := time.Since(t0)
	p.timer.Stop()
	return d
}

// meshThroughput counts, per receiver, the events of prefix "tp:".
type meshThroughput struct {
	m       *benchMesh
	keys    []string
	rcv     []*warptest.Counter
	resyncs []*warptest.Counter
}

func (m *benchMesh) newThroughput(tb testing.TB) *meshThroughput {
	tb.Helper()
	t := &meshThroughput{m: m, keys: benchKeyNames("tp:")}
	for _, r := range m.recv {
		ch, err := r.SubscribePrefix(m.ctx, "tp:")
		if err != nil {
			tb.Fatal(err)
		}
		c, rs := &warptest.Counter{}, &warptest.Counter{}
		t.rcv, t.resyncs = append(t.rcv, c), append(t.resyncs, rs)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for ev := range ch {
				if ev.Op == syncbus.OpResync {
					rs.Add(1)
					continue
				}
				// Count what is already buffered in one go: the counter's
				// lock then costs little next to the delivery itself.
				k := uint64(1)
			more:
				for k < 256 {
					select {
					case ev, ok := <-ch:
						if !ok {
							break more
						}
						if ev.Op == syncbus.OpResync {
							rs.Add(1)
							continue
						}
						k++
					default:
						break more
					}
				}
				c.Add(k)
			}
		}()
	}
	return t
}

// run publishes n events from node 0 following plan and waits until every
// receiver counted them (or stalled).
func (t *meshThroughput) run(tb testing.TB, n int, plan throughputPlan) throughputResult {
	tb.Helper()
	return runThroughput(tb, n, plan, t.rcv, func(i int) error {
		return t.m.pub.Publish(context.Background(), t.keys[i%len(t.keys)])
	}, nil)
}

// publishSplit calls publish(i) for i in [0, n), spread over the given
// number of goroutines, and returns the first error.
func publishSplit(n, publishers int, publish func(i int) error) error {
	if publishers <= 1 {
		for i := range n {
			if err := publish(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make(chan error, publishers)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += publishers {
				if err := publish(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when no goroutine failed
}

// meshLoss sums what the cluster counted as lost, dropped or repaired.
type meshLoss struct {
	resyncs     uint64 // resync events handed to subscriptions
	dropped     uint64 // prefix overflows, and input refused by reason
	queueDrops  uint64 // datagrams the transports dropped: their queue was full
	kernelDrops uint64 // UDP receive-buffer overflows, machine-wide (Linux)
	duplicates  uint64 // events received again (repairs, retransmissions)
	repairs     uint64 // repair requests (NAKs)
	retransmits uint64
	published   uint64 // events, at the publisher
	frames      uint64 // data frames, at the publisher
}

func (m *benchMesh) loss() meshLoss {
	var l meshLoss
	for _, b := range m.buses {
		mt := b.Metrics()
		l.resyncs += mt.Resyncs
		l.dropped += mt.Dropped
		l.duplicates += mt.Duplicates
		l.repairs += mt.RepairRequests
		l.retransmits += mt.Retransmits
		for _, n := range mt.DropsByReason {
			l.dropped += n
		}
		if nt, ok := b.Membership().Transport().(*membership.NetTransport); ok {
			l.queueDrops += nt.Stats().DatagramsDropped
		}
	}
	l.kernelDrops = udpRcvbufErrors()
	pm := m.pub.Metrics()
	l.published, l.frames = pm.Published, pm.Batches
	return l
}

func (l meshLoss) sub(o meshLoss) meshLoss {
	return meshLoss{
		resyncs: l.resyncs - o.resyncs, dropped: l.dropped - o.dropped,
		queueDrops: l.queueDrops - o.queueDrops, kernelDrops: l.kernelDrops - o.kernelDrops,
		duplicates: l.duplicates - o.duplicates,
		repairs:    l.repairs - o.repairs, retransmits: l.retransmits - o.retransmits,
		published: l.published - o.published, frames: l.frames - o.frames,
	}
}

// report adds the loss figures to the benchmark's output.
func (l meshLoss) report(b *testing.B) {
	b.ReportMetric(float64(l.resyncs), "resyncs")
	b.ReportMetric(float64(l.dropped), "drops")
	b.ReportMetric(float64(l.queueDrops), "qdrops")
	b.ReportMetric(float64(l.kernelDrops), "kdrops")
	b.ReportMetric(float64(l.duplicates), "dups")
	b.ReportMetric(float64(l.repairs), "naks")
	if l.frames > 0 {
		b.ReportMetric(float64(l.published)/float64(l.frames), "ev/frame")
	}
}

// udpRcvbufErrors returns the machine's count of UDP datagrams dropped
// because a socket's receive buffer was full, or 0 where the system does
// not say. It counts every process's sockets, so it is an upper bound of
// the benchmark's own.
func udpRcvbufErrors() uint64 {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		for i, f := range fields {
			if i < len(names) && names[i] == "RcvbufErrors" {
				n, _ := strconv.ParseUint(f, 10, 64)
				return n
			}
		}
	}
	return 0
}

// benchKeyNames returns benchKeys keys with the given prefix, made before
// any timing starts.
func benchKeyNames(prefix string) []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
	}
	return keys
}

// BenchmarkMesh measures the mesh on one cluster, started once: the
// sub-benchmarks run one after another on it (each -count times), and
// their subscriptions are made once, before the first of them.
func BenchmarkMesh(b *testing.B) {
	m := startBenchMesh(b, nil)
	benchMeshLatency(b, m)

	// Throughput: node 0 publishes as fast as it can (or in windows); ns/op
	// runs from the first publish until every receiver counted the last
	// event.
	tp := m.newThroughput(b)
	for _, tc := range throughputPlans() {
		b.Run("Throughput/"+tc.name, func(b *testing.B) {
			before, cpu := m.loss(), processCPU()
			b.ReportAllocs()
			res := tp.run(b, b.N, tc.plan)
			b.StopTimer()
			reportCPU(b, processCPU()-cpu, b.N)
			l := m.loss().sub(before)
			reportThroughput(b, res)
			l.report(b)
		})
	}
}

// BenchmarkMeshRelay is BenchmarkMesh's latencies with FanoutRelay forced:
// at five nodes FanoutAuto picks direct fanout, and this shows what the
// relay hop and the relay's ack aggregation cost on the same cluster.
func BenchmarkMeshRelay(b *testing.B) {
	m := startBenchMesh(b, func(o *mesh.MeshOptions) { o.Fanout = mesh.FanoutRelay })
	benchMeshLatency(b, m)
}

// benchMeshLatency runs the two latency sub-benchmarks on m.
func benchMeshLatency(b *testing.B, m *benchMesh) {
	// The round trip to all four other nodes: sent, delivered to a
	// subscription on each, acknowledged.
	const key = "await:k"
	m.drain(b, key)
	m.awaitOp(b, key) // the first publish of a key pays for the subscriptions' setup
	b.Run("PublishAndAwait4", func(b *testing.B) {
		var lat latencies
		b.ReportAllocs()
		lat.startCPU()
		for b.Loop() {
			lat.add(m.awaitOp(b, key))
		}
		lat.report(b)
	})

	// Eventual delivery: Publish, then wait until every receiver's
	// subscription holds the event.
	p := m.newEventualProbe(b)
	i := 0
	p.op(b, i)
	b.Run("Eventual4", func(b *testing.B) {
		var lat latencies
		b.ReportAllocs()
		lat.startCPU()
		for b.Loop() {
			i++
			lat.add(p.op(b, i))
		}
		lat.report(b)
	})
}

// reportThroughput adds the slowest receiver's rate and the events lost
// to the benchmark's output.
func reportThroughput(b *testing.B, res throughputResult) {
	// ns/op runs to the last delivery, not to the end of a stalled wait.
	b.ReportMetric(float64(res.maxElapsed().Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(res.minRate(), "ev/s/recv")
	b.ReportMetric(float64(res.lost()), "lost")
}
