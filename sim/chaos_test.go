package sim_test

// The chaos harness's faults on sim, judged by the same checker
// (internal/chaos) as the real processes in network namespaces: nodes
// crashed and restarted, a zone cut off and healed, a node paused and
// resumed, nodes restarted gracefully, under a steady load of plain and
// awaited publishes, with every node's all-keys subscription recorded.
// TestChaosSim is the light run of the normal suite; TestChaosSim1000
// (chaos_long_test.go, tag long) is the 1000-node one.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/chaos"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/sim"
	"github.com/warpmesh/warp/syncbus"
)

// chaosPlan is one chaos run on sim. Durations are simulated time.
type chaosPlan struct {
	zones   []sim.ZoneSpec
	seed    uint64
	profile string
	// rate is the events per simulated second, every kind together: three
	// in five plain, one in five awaiting 2 replicas, one in five awaiting
	// 2 zones.
	rate float64
	// calm is the steady load before, between and after the faults;
	// faultFor how long each fault lasts; victims how many nodes a crash
	// or restart takes at once.
	calm, faultFor time.Duration
	victims        int
	// grace and settle are the checker's (simulated time).
	grace, settle time.Duration
	// memoryPerNode is the ceiling of what the nodes hold, per node: the
	// live heap and the stacks (the whole cluster is one process here).
	memoryPerNode uint64
}

// simChaos records a chaos run on a sim cluster for chaos.Check.
type simChaos struct {
	t    *testing.T
	plan chaosPlan
	c    *sim.Cluster
	net  *sim.Network
	ctx  context.Context
	rng  *rand.Rand // the test goroutine's own

	readers sync.WaitGroup // subscription readers
	awaits  sync.WaitGroup // awaited publishes in flight
	pubs    sync.WaitGroup // publisher and sampler loops

	mu  sync.Mutex
	rec chaos.Record
	seq int
}

// runChaosSim runs plan and fails t on any violation.
func runChaosSim(t *testing.T, plan chaosPlan) *chaos.Result {
	plan.seed = testSeed(t, plan.seed)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	var specs []sim.NodeSpec
	for _, z := range plan.zones {
		for i := range z.Nodes {
			specs = append(specs, sim.NodeSpec{Name: fmt.Sprintf("%s-%d", z.Name, i+1), Zone: z.Name, Region: "sim"})
		}
	}
	wall0 := time.Now()
	c, err := sim.NewCluster(ctx, sim.ClusterConfig{
		Nodes: specs, Seed: plan.seed, Profile: plan.profile,
		Intra: sim.Link{Latency: 200 * time.Microsecond, Jitter: 50 * time.Microsecond},
		Inter: sim.Link{Latency: 2 * time.Millisecond, Jitter: 500 * time.Microsecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &simChaos{t: t, plan: plan, c: c, net: c.Network(), ctx: ctx, rng: rand.New(rand.NewPCG(plan.seed, 0x63686173))}
	for _, n := range c.Nodes() {
		h.rec.Nodes = append(h.rec.Nodes, chaos.Node{Name: n.Name(), Zone: n.Zone()})
		h.subscribe(n)
	}
	t.Logf("%d nodes up and subscribed in %v (scale %g)", len(specs), time.Since(wall0).Round(time.Millisecond), h.net.TimeScale())
	defer func() {
		_ = c.Close() // closes every subscription
		h.readers.Wait()
	}()

	loadCtx, stopLoad := context.WithCancel(ctx)
	h.pubs.Add(2)
	go h.load(loadCtx)
	go h.sample(loadCtx)

	h.sleep(plan.calm)
	h.crash(h.victims())
	h.sleep(plan.calm)
	h.cut(plan.zones[len(plan.zones)-1].Name)
	h.sleep(plan.calm)
	h.pause(c.Nodes()[h.rng.IntN(len(c.Nodes()))])
	h.sleep(plan.calm)
	h.restart(h.victims())
	h.sleep(plan.calm)
	stopLoad()
	h.pubs.Wait()
	h.awaits.Wait()

	cfg := chaos.Config{
		Grace: h.net.Wall(plan.grace), Settle: h.net.Wall(plan.settle),
		MaxGoroutines:  chaos.MaxGoroutines * len(specs),
		MaxMemoryBytes: plan.memoryPerNode*uint64(len(specs)) + 512<<20,
	}
	var res *chaos.Result
	// The check runs at most every 200ms: on 1000 nodes it takes a while.
	var last time.Time
	warptest.WaitFor(cfg.Settle, func() bool {
		if res != nil && time.Since(last) < 200*time.Millisecond {
			return false
		}
		res, last = chaos.Check(h.snapshot(), cfg), time.Now()
		return res.Summary.Violations[chaos.SilentLoss] == 0
	})
	res = chaos.Check(h.snapshot(), cfg)
	var b bytes.Buffer
	_ = res.WriteTable(&b)
	t.Logf("chaos on sim, %d nodes, wall %v (times below are wall clock, scale %g):\n%s",
		len(specs), time.Since(wall0).Round(time.Second), h.net.TimeScale(), b.String())
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if res.AwaitedOK == 0 || res.Owed == 0 || res.Reached == 0 {
		t.Fatalf("the load did not run: %d awaited successes, %d owed deliveries, %d reached", res.AwaitedOK, res.Owed, res.Reached)
	}
	return res
}

// sleep lets simulated time d pass.
func (h *simChaos) sleep(d time.Duration) {
	select {
	case <-time.After(h.net.Wall(d)): // the scenario's clock, not synchronisation
	case <-h.ctx.Done():
	}
}

// subscribe records node n's current bus's all-keys subscription until
// it closes.
func (h *simChaos) subscribe(n *sim.Node) {
	b := n.Bus()
	if b == nil {
		h.t.Fatalf("%s has no bus", n.Name())
	}
	ch, err := b.SubscribePrefix(context.Background(), "")
	if err != nil {
		h.t.Fatalf("subscribe on %s: %v", n.Name(), err)
	}
	h.mu.Lock()
	idx := len(h.rec.Streams)
	h.rec.Streams = append(h.rec.Streams, chaos.Stream{Node: n.Name(), Opened: time.Now()})
	h.mu.Unlock()
	h.readers.Add(1)
	go func() {
		defer h.readers.Done()
		for ev := range ch {
			d := chaos.Delivery{At: time.Now(), ID: ev.ID.String(), Key: ev.Key, Origin: ev.Origin, Op: chaos.OpInvalidate}
			if ev.Op == syncbus.OpResync {
				d.Op = chaos.OpResync
			}
			h.mu.Lock()
			s := &h.rec.Streams[idx]
			s.Events = append(s.Events, d)
			h.mu.Unlock()
		}
		h.mu.Lock()
		h.rec.Streams[idx].Closed = time.Now()
		h.mu.Unlock()
	}()
}

// victims picks plan.victims nodes, in as many zones as it can.
func (h *simChaos) victims() []*sim.Node {
	var out []*sim.Node
	zones := map[string]bool{}
	nodes := h.c.Nodes()
	for _, i := range h.rng.Perm(len(nodes)) {
		n := nodes[i]
		if len(out) == h.plan.victims {
			break
		}
		if !zones[n.Zone()] || len(zones) == len(h.plan.zones) {
			zones[n.Zone()] = true
			out = append(out, n)
		}
	}
	return out
}

func names(nodes []*sim.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name()
	}
	return out
}

func (h *simChaos) addFault(f chaos.Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rec.Faults = append(h.rec.Faults, f)
}

// converged waits until every node sees every other alive.
func (h *simChaos) converged(after string) time.Time {
	ctx, cancel := context.WithTimeout(h.ctx, h.net.Wall(60*time.Second))
	defer cancel()
	t0 := time.Now()
	if err := h.c.WaitConverged(ctx); err != nil {
		h.t.Fatalf("the cluster did not converge after %s: %v", after, err)
	}
	h.t.Logf("converged %v (wall) after %s", time.Since(t0).Round(time.Millisecond), after)
	return time.Now()
}

// crash crashes nodes at once and restarts them after faultFor.
func (h *simChaos) crash(nodes []*sim.Node) {
	f := chaos.Fault{Kind: chaos.Kill, Nodes: names(nodes), From: time.Now()}
	for _, n := range nodes {
		h.c.Crash(n)
	}
	h.sleep(h.plan.faultFor)
	h.restartEach(nodes)
	f.To = h.converged(fmt.Sprintf("crashing %v", f.Nodes))
	h.addFault(f)
}

// restart restarts nodes gracefully, one after the other.
func (h *simChaos) restart(nodes []*sim.Node) {
	f := chaos.Fault{Kind: chaos.Restart, Nodes: names(nodes), From: time.Now()}
	h.restartEach(nodes)
	f.To = h.converged(fmt.Sprintf("restarting %v", f.Nodes))
	h.addFault(f)
}

func (h *simChaos) restartEach(nodes []*sim.Node) {
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(h.ctx, h.net.Wall(60*time.Second))
		_, err := h.c.Restart(ctx, n)
		cancel()
		if err != nil && n.Bus() == nil {
			h.t.Fatalf("restarting %s: %v", n.Name(), err)
		}
		h.subscribe(n)
	}
}

// cut cuts zone off from the others for faultFor, and heals.
func (h *simChaos) cut(zone string) {
	var in []string
	for _, n := range h.c.Nodes() {
		if n.Zone() == zone {
			in = append(in, n.Name())
		}
	}
	f := chaos.Fault{Kind: chaos.Cut, Nodes: in, From: time.Now()}
	p := h.net.PartitionZones([]string{zone}, nil, false)
	h.sleep(h.plan.faultFor)
	p.Heal()
	f.To = h.converged("cutting zone " + zone + " off")
	h.addFault(f)
}

// pause pauses node n for faultFor, and resumes it.
func (h *simChaos) pause(n *sim.Node) {
	f := chaos.Fault{Kind: chaos.Pause, Nodes: []string{n.Name()}, From: time.Now()}
	n.Host().Pause()
	h.sleep(h.plan.faultFor)
	n.Host().Resume()
	f.To = h.converged("pausing " + n.Name())
	h.addFault(f)
}

// load publishes at plan.rate from random running nodes until ctx ends.
func (h *simChaos) load(ctx context.Context) {
	defer h.pubs.Done()
	rng := rand.New(rand.NewPCG(h.plan.seed, 0x6c6f6164))
	tick := time.NewTicker(h.net.Wall(time.Duration(float64(time.Second) / h.plan.rate))) // the load's pace
	defer tick.Stop()
	nodes := h.c.Nodes()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n := nodes[rng.IntN(len(nodes))]
		b := n.Bus()
		if b == nil || !n.Host().Up() || n.Host().Paused() {
			continue
		}
		h.mu.Lock()
		h.seq++
		key := fmt.Sprintf("chaos/%d", h.seq)
		h.mu.Unlock()
		p := chaos.Publish{Node: n.Name(), Key: key, Kind: chaos.Plain, Start: time.Now()}
		switch rng.IntN(5) {
		case 3:
			p.Kind, p.Asked = chaos.Replicas, 2
		case 4:
			p.Kind, p.Asked = chaos.Zones, 2
		}
		if p.Kind == chaos.Plain {
			err := b.Publish(ctx, key)
			if ctx.Err() != nil {
				continue // stopping: nobody judges this one
			}
			p.End, p.Err = time.Now(), reason(err)
			h.addPublish(p)
			continue
		}
		h.awaits.Add(1)
		go func() {
			defer h.awaits.Done()
			actx, cancel := context.WithTimeout(h.ctx, h.net.Wall(2*time.Second))
			defer cancel()
			var rep syncbus.AckReport
			var err error
			if p.Kind == chaos.Replicas {
				err = b.PublishAndAwait(actx, key, p.Asked, syncbus.WithAckReport(&rep))
			} else {
				err = b.PublishAndAwaitTopology(actx, key, p.Asked, syncbus.WithAckReport(&rep))
			}
			p.End, p.Err = time.Now(), reason(err)
			p.AckedNodes, p.AckedZones = slices.Clone(rep.Nodes), slices.Clone(rep.Zones)
			h.addPublish(p)
		}()
	}
}

// reason names why a publish failed, as chaos.Publish.Err does.
func reason(err error) string {
	var qe *syncbus.QuorumError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &qe) && qe.FailFast:
		return chaos.ReasonFailFast
	case errors.As(err, &qe), errors.Is(err, context.DeadlineExceeded):
		return chaos.ReasonDeadline
	case errors.Is(err, syncbus.ErrBackpressure):
		return chaos.ReasonBackpressure
	case errors.Is(err, syncbus.ErrClosed):
		return chaos.ReasonClosed
	}
	return chaos.ReasonOther
}

func (h *simChaos) addPublish(p chaos.Publish) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rec.Publishes = append(h.rec.Publishes, p)
}

// sample reads the process's goroutines and memory (the whole cluster's)
// every simulated second.
func (h *simChaos) sample(ctx context.Context) {
	defer h.pubs.Done()
	tick := time.NewTicker(h.net.Wall(time.Second))
	defer tick.Stop()
	mem := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// What the nodes hold: the heap the last collection found live, and
		// the stacks. The heap in use also holds garbage not yet collected,
		// up to GOGC's (or the soft limit's) headroom, which says how the
		// collector is paced rather than what the nodes keep.
		metrics.Read(mem)
		held := mem[0].Value.Uint64() + mem[1].Value.Uint64()
		s := chaos.Sample{Node: "sim", At: time.Now(), Goroutines: runtime.NumGoroutine(), MemoryBytes: held}
		h.mu.Lock()
		h.rec.Samples = append(h.rec.Samples, s)
		h.mu.Unlock()
	}
}

// snapshot copies the record (the readers keep appending).
func (h *simChaos) snapshot() *chaos.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rec
	r.Streams = slices.Clone(r.Streams)
	r.Publishes = slices.Clone(r.Publishes)
	r.Faults = slices.Clone(r.Faults)
	r.Samples = slices.Clone(r.Samples)
	return &r
}

// TestChaosSim: the chaos faults on a small cluster — 30 nodes in three
// zones, 6 under the race detector — with the chaos invariants.
func TestChaosSim(t *testing.T) {
	perZone := 10
	if sim.AutoScale(1) > 1 { // only the race detector stretches one node's time
		perZone = 2
	}
	runChaosSim(t, chaosPlan{
		zones: threeZones(perZone), seed: 15, profile: "local",
		rate: 40, calm: 500 * time.Millisecond, faultFor: time.Second, victims: 2,
		grace: time.Second, settle: time.Second, memoryPerNode: 16 << 20,
	})
}
