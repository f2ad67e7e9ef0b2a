//go:build long

package mesh_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/faults"
	"github.com/warpmesh/warp/internal/warptest/nettest"
	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/mesh"
)

// TestScale measures a cluster of N nodes in one process, over real UDP on
// loopback, in five zones and relay mode: how long it takes to join, how
// many false suspicions follow once it has, its CPU and memory per node,
// its idle gossip, and the datagrams that cross zones per plain and per
// awaited event and per burst's digests. It asserts only that the
// cluster converges; the figures are for BENCHMARKS.md.
//
//	go test -tags long -run TestScale -v -timeout 3h ./mesh
//
// Environment: WARP_SCALE_N (sizes, default "50,100,200"),
// WARP_SCALE_TIMESCALE (default 1), WARP_SCALE_HOLD (the idle period
// watched for false suspicions, default 30s), WARP_SCALE_COMPRESS=1
// (memberlist's gossip compression on, as before it was turned off),
// WARP_SCALE_CPUPROFILE=FILE (a CPU profile of the idle period, to
// FILE.N).
func TestScale(t *testing.T) {
	sizes := []int{50, 100, 200}
	if s := os.Getenv("WARP_SCALE_N"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 5 {
				t.Fatalf("WARP_SCALE_N: %q is not a size of at least 5", f)
			}
			sizes = append(sizes, n)
		}
	}
	scale := 1.0
	if s := os.Getenv("WARP_SCALE_TIMESCALE"); s != "" {
		var err error
		if scale, err = strconv.ParseFloat(s, 64); err != nil || scale < 1 {
			t.Fatalf("WARP_SCALE_TIMESCALE: %q", s)
		}
	}
	hold := 30 * time.Second
	if s := os.Getenv("WARP_SCALE_HOLD"); s != "" {
		var err error
		if hold, err = time.ParseDuration(s); err != nil {
			t.Fatalf("WARP_SCALE_HOLD: %v", err)
		}
	}
	compress := os.Getenv("WARP_SCALE_COMPRESS") == "1"
	for _, n := range sizes {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			r := runScale(t, n, scale, hold, compress)
			t.Logf("N=%d scale=%g compress=%v: %s", n, scale, compress, r)
		})
	}
}

// scaleResult is what one size measured.
type scaleResult struct {
	converged      bool
	join           time.Duration
	worstView      int     // the fewest alive members a node saw at the deadline
	suspicions     int64   // suspect or failed events after convergence
	cpuPerNode     float64 // share of one core per node while idle
	heapPerNodeMiB float64
	gossipPerNode  float64 // memberlist packets sent per node and second, idle
	plain, awaited float64 // cross-zone data datagrams per event
	digests        float64 // cross-zone digests per remote zone and round
	credits        float64 // cross-zone credits per burst
}

func (r scaleResult) String() string {
	if !r.converged {
		return fmt.Sprintf("did NOT converge; the worst node saw %d", r.worstView)
	}
	return fmt.Sprintf("join %.1fs, false suspicions after join %d, idle CPU %.2f%% of a core per node, heap %.1f MiB per node, "+
		"gossip %.1f packets/node/s; cross-zone datagrams: %.2f per plain event, %.2f per awaited event, %.2f digests per remote zone and round, %.0f credits per burst",
		r.join.Seconds(), r.suspicions, 100*r.cpuPerNode, r.heapPerNodeMiB, r.gossipPerNode, r.plain, r.awaited, r.digests, r.credits)
}

// crossZone counts the packets that cross zones, by kind, and every
// gossip packet.
type crossZone struct {
	zoneOf map[netip.AddrPort]string // written before the first packet
	kinds  [faults.KindSealed + 1]atomic.Int64
	gossip atomic.Int64
}

func (c *crossZone) judge(p faults.Packet) faults.Verdict {
	if p.Kind == faults.KindGossip {
		c.gossip.Add(1)
	}
	if int(p.Kind) < len(c.kinds) && c.zoneOf[p.From] != c.zoneOf[p.To] {
		c.kinds[p.Kind].Add(1)
	}
	return faults.Verdict{}
}

func (c *crossZone) snapshot() (out [faults.KindSealed + 1]int64) {
	for i := range c.kinds {
		out[i] = c.kinds[i].Load()
	}
	return out
}

// scaleCluster is N nodes in five zones over real UDP, each with a
// counting transport.
type scaleCluster struct {
	buses    []*mesh.MeshBus
	count    *crossZone
	start    time.Time
	closeAll func()
}

func startScaleCluster(t *testing.T, n int, scale float64, compress bool) *scaleCluster {
	const zoneCount, seedCount = 5, 3
	rules := faults.New(1)
	c := &scaleCluster{count: &crossZone{zoneOf: make(map[netip.AddrPort]string, n)}, buses: make([]*mesh.MeshBus, n)}
	trs := make([]*nettest.Transport, n)
	for i := range n {
		tr, err := nettest.Listen(rules, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		trs[i] = tr
		c.count.zoneOf[tr.Addr()] = fmt.Sprintf("z%d", i%zoneCount)
	}
	rules.Hook(faults.Match{}, c.count.judge)
	var seeds []string
	for i := range seedCount {
		seeds = append(seeds, trs[i].Addr().String())
	}
	var closeOnce sync.Once
	c.closeAll = func() {
		closeOnce.Do(func() {
			var wg sync.WaitGroup
			for _, b := range c.buses {
				if b != nil {
					wg.Go(func() { _ = b.Close() })
				}
			}
			wg.Wait()
		})
	}
	t.Cleanup(c.closeAll)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c.start = time.Now()
	for i := range n {
		o := mesh.DefaultMeshOptions()
		o.NodeName = fmt.Sprintf("n%03d", i)
		o.Zone = c.count.zoneOf[trs[i].Addr()]
		o.BindAddr = "127.0.0.1"
		o.Transport = trs[i]
		o.Peers = seeds
		o.Fanout = mesh.FanoutRelay
		o.TimeScale = scale
		o.Logger = quiet
		mesh.TuneMembership(&o, func(c *membership.Config) { c.GossipCompression = compress })
		b, err := mesh.NewMeshBus(o)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		c.buses[i] = b
	}
	return c
}

// waitConverged waits, up to limit from the start, until every node sees
// every node alive; it returns how long that took, or false and the
// fewest alive members a node saw.
func (c *scaleCluster) waitConverged(limit time.Duration) (time.Duration, int, bool) {
	n := len(c.buses)
	deadline := c.start.Add(limit)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	worst := 0
	for ; time.Now().Before(deadline); <-poll.C {
		worst = n
		for _, b := range c.buses {
			k := 0
			for _, m := range b.Members() {
				if m.State.Alive() {
					k++
				}
			}
			worst = min(worst, k)
		}
		if worst == n {
			return time.Since(c.start), n, true
		}
	}
	return 0, worst, false
}

func runScale(t *testing.T, n int, scale float64, hold time.Duration, compress bool) scaleResult {
	const zoneCount = 5
	c := startScaleCluster(t, n, scale, compress)
	buses, count := c.buses, c.count
	var r scaleResult
	r.join, r.worstView, r.converged = c.waitConverged(time.Duration(float64(180*time.Second) * scale))
	if !r.converged {
		t.Errorf("%d nodes did not converge: the worst node saw %d alive", n, r.worstView)
		return r
	}
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()

	// Idle: false suspicions, CPU, gossip, memory.
	var suspicions atomic.Int64
	var readers sync.WaitGroup
	for _, b := range buses {
		events := b.Membership().Events()
		for len(events) > 0 {
			<-events // what happened while joining
		}
		readers.Go(func() {
			for e := range events {
				if e.Kind == membership.EventSuspect || e.Kind == membership.EventFailed {
					suspicions.Add(1)
				}
			}
		})
	}
	if path := os.Getenv("WARP_SCALE_CPUPROFILE"); path != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", path, n))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
	}
	cpu0, gossip0, t0 := processCPU(), count.gossip.Load(), time.Now()
	idle := time.NewTimer(hold)
	<-idle.C
	pprof.StopCPUProfile() // a no-op without a profile
	elapsed := time.Since(t0)
	r.cpuPerNode = (processCPU() - cpu0).Seconds() / elapsed.Seconds() / float64(n)
	r.gossipPerNode = float64(count.gossip.Load()-gossip0) / elapsed.Seconds() / float64(n)
	r.suspicions = suspicions.Load()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.heapPerNodeMiB = float64(ms.HeapInuse) / float64(n) / (1 << 20)

	// Traffic: a burst of plain events, then awaited ones.
	const burst = 20
	var got atomic.Int64
	perNode := make([]atomic.Int64, n)
	for i, b := range buses[1:] {
		ch, err := b.SubscribePrefix(context.Background(), "scale:")
		if err != nil {
			t.Fatal(err)
		}
		readers.Go(func() {
			for range ch {
				got.Add(1)
				perNode[i+1].Add(1)
			}
		})
	}
	// explain says, for the nodes that lack an event, what they and the
	// publisher know of each other.
	explain := func(want int64) string {
		var b strings.Builder
		shown := 0
		for i := 1; i < n && shown < 8; i++ {
			if perNode[i].Load() >= want {
				continue
			}
			shown++
			node := buses[i]
			state := func(of *mesh.MeshBus, name string) string {
				for _, m := range of.Members() {
					if m.Name == name {
						return m.State.String()
					}
				}
				return "unknown"
			}
			m := node.Metrics()
			fmt.Fprintf(&b, "\n  %s (zone %s): has %d of %d; sees the publisher %s, is %s to it; resyncs %d, refused %v",
				node.Membership().Name(), node.Membership().Local().Zone, perNode[i].Load(), want,
				state(node, buses[0].Membership().Name()), state(buses[0], node.Membership().Name()), m.Resyncs, m.DropsByReason)
		}
		return b.String()
	}
	pub := buses[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(float64(2*time.Minute)*scale))
	defer cancel()
	// One plain event at a time, each delivered everywhere before the
	// next: the cost of an event that has a datagram to itself.
	before := count.snapshot()
	for i := range burst {
		if err := pub.Publish(ctx, fmt.Sprintf("scale:plain:%d", i)); err != nil {
			t.Fatal(err)
		}
		want := int64((i + 1) * (n - 1))
		for ; got.Load() < want && ctx.Err() == nil; <-poll.C {
		}
		if got.Load() < want {
			t.Fatalf("plain event %d reached %d of %d deliveries:%s", i, got.Load(), want, explain(int64(i+1)))
		}
	}
	after := count.snapshot()
	r.plain = float64(after[faults.KindEvents]-before[faults.KindEvents]) / burst

	// A burst, then quiet: the digest rounds that follow it.
	before = count.snapshot()
	for i := range burst {
		if err := pub.Publish(ctx, fmt.Sprintf("scale:burst:%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	want := int64(2 * burst * (n - 1))
	for ; got.Load() < want && ctx.Err() == nil; <-poll.C {
	}
	if got.Load() < want {
		t.Fatalf("the burst reached %d of %d deliveries:%s", got.Load(), want, explain(2*burst))
	}
	digestsDone := time.NewTimer(time.Duration(float64(2*time.Second) * scale)) // the digest rounds are over by then
	<-digestsDone.C
	after = count.snapshot()
	const digestRounds = 3
	r.digests = float64(after[faults.KindDigest]-before[faults.KindDigest]) / digestRounds / (zoneCount - 1)
	r.credits = float64(after[faults.KindCredit] - before[faults.KindCredit])

	before = count.snapshot()
	for i := range burst {
		if err := pub.PublishAndAwait(ctx, fmt.Sprintf("scale:awaited:%d", i), n-1); err != nil {
			t.Fatalf("awaited event %d: %v", i, err)
		}
	}
	after = count.snapshot()
	r.awaited = float64(after[faults.KindEvents]+after[faults.KindAcks]-before[faults.KindEvents]-before[faults.KindAcks]) / burst
	var retrans uint64
	for _, b := range buses {
		retrans += b.Metrics().Retransmits
	}
	t.Logf("retransmissions in the whole cluster: %d", retrans)

	c.closeAll()
	readers.Wait()
	return r
}

// TestJoinTrials starts a cluster again and again and reports how long
// each took to converge: a lopsided join (one node missing a member until
// a periodic state exchange) shows as a long tail.
//
//	go test -tags long -run TestJoinTrials -v -timeout 3h ./mesh
//
// Environment: WARP_SCALE_N (default "25,50"), WARP_JOIN_TRIALS (default 20).
func TestJoinTrials(t *testing.T) {
	sizes := []int{25, 50}
	if s := os.Getenv("WARP_SCALE_N"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 5 {
				t.Fatalf("WARP_SCALE_N: %q", f)
			}
			sizes = append(sizes, n)
		}
	}
	trials := 20
	if s := os.Getenv("WARP_JOIN_TRIALS"); s != "" {
		var err error
		if trials, err = strconv.Atoi(s); err != nil || trials < 1 {
			t.Fatalf("WARP_JOIN_TRIALS: %q", s)
		}
	}
	for _, n := range sizes {
		var times []time.Duration
		slow := 0
		for range trials {
			c := startScaleCluster(t, n, 1, false)
			d, worst, ok := c.waitConverged(3 * time.Minute)
			c.closeAll()
			if !ok {
				t.Errorf("N=%d: no convergence in 3 minutes (worst view %d)", n, worst)
				d = 3 * time.Minute
			}
			if d > 10*time.Second {
				slow++
			}
			times = append(times, d)
		}
		slices.Sort(times)
		t.Logf("N=%d, %d joins: median %.1fs, max %.1fs, %d over 10s", n, trials, times[len(times)/2].Seconds(), times[len(times)-1].Seconds(), slow)
	}
}
