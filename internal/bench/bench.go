// Package bench is the harness of `warp bench`: in one run on one machine
// it measures the mesh side by side with the physical floor of an
// acknowledged UDP fanout, NATS core, Redis pub/sub and Kafka (raw
// clients), and the bridges over the same servers, and reports every
// figure with its ratio to the best alternative measured in the same run.
//
// It starts what it needs by itself — an embedded nats-server, a
// redis-server child process when the binary is on PATH, an in-process
// Kafka cluster (kfake) — on free ports of 127.0.0.1, and stops them
// afterwards. Library packages never import it (arch_test.go).
//
// Every system runs the same phases, each bounded in time: warm-up,
// eventual latency to 4 receivers, PublishAndAwait(4) (or the raw client's
// request with 4 replies), PublishAndAwaitTopology(3) (mesh and bridges),
// sustained throughput to 4 receivers, and a burst to 4 and then to 2
// receivers. Receivers do the same work on every system: they store each
// key in a map.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// System IDs, in the order a run measures them.
const (
	Floor       = "floor"
	Mesh        = "mesh"
	NATS        = "nats"
	NATSBridge  = "nats-bridge"
	Redis       = "redis"
	RedisBridge = "redis-bridge"
	Kafka       = "kafka"
	KafkaBridge = "kafka-bridge"
)

// AllSystems lists every system a run can measure, in order.
var AllSystems = []string{Floor, Mesh, NATS, NATSBridge, Redis, RedisBridge, Kafka, KafkaBridge}

// systemNames are the systems' names in the output.
var systemNames = map[string]string{
	Floor:       "UDP floor (raw Go, 4 acks)",
	Mesh:        "Warp Mesh (5 nodes, zones 2+2+1, encrypted)",
	NATS:        "NATS core (nats.go)",
	NATSBridge:  "NATS bridge",
	Redis:       "Redis pub/sub (go-redis)",
	RedisBridge: "Redis bridge",
	Kafka:       "Kafka (sarama, kfake)",
	KafkaBridge: "Kafka bridge (kfake)",
}

// rawOf names the raw client each bridge runs over.
var rawOf = map[string]string{NATSBridge: NATS, RedisBridge: Redis, KafkaBridge: Kafka}

// Config says what a run measures and how much.
type Config struct {
	// Quick runs a short version of every phase (the whole run within 90
	// seconds); the full run takes up to 5 minutes.
	Quick bool
	// Systems limits the run to these systems (IDs of AllSystems); empty
	// means all of them.
	Systems []string
	// LatencyOps, ThroughputEvents and BurstEvents override the mode's
	// sizes when positive: operations per latency phase, events of the
	// throughput phase, events of each burst.
	LatencyOps       int
	ThroughputEvents int
	BurstEvents      int
	// Budget overrides the mode's bound of the whole run when positive.
	Budget time.Duration
	// Progress receives one line per phase as the run goes (nil: none).
	Progress io.Writer
}

// sizes are the counts and time bounds of one run.
type sizes struct {
	latencyOps, warmupOps int
	throughput, burst     int
	setup                 time.Duration // starting a system's servers and nodes
	latency               time.Duration // one latency phase
	flood                 time.Duration // one throughput or burst phase
	stall                 time.Duration // no delivery for this long ends a flood's wait
	budget                time.Duration // the whole run
}

func (c Config) sizes() sizes {
	s := sizes{
		latencyOps: 2000, warmupOps: 200, throughput: 500_000, burst: 300_000,
		setup: 60 * time.Second, latency: 15 * time.Second, flood: 30 * time.Second,
		stall: 3 * time.Second, budget: 290 * time.Second,
	}
	if c.Quick {
		s = sizes{
			latencyOps: 300, warmupOps: 30, throughput: 60_000, burst: 40_000,
			setup: 25 * time.Second, latency: 4 * time.Second, flood: 8 * time.Second,
			stall: 1500 * time.Millisecond, budget: 80 * time.Second,
		}
	}
	if c.LatencyOps > 0 {
		s.latencyOps, s.warmupOps = c.LatencyOps, max(c.LatencyOps/10, 1)
	}
	if c.ThroughputEvents > 0 {
		s.throughput = c.ThroughputEvents
	}
	if c.BurstEvents > 0 {
		s.burst = c.BurstEvents
	}
	if c.Budget > 0 {
		s.budget = c.Budget
	}
	return s
}

// CheckSystems returns an error naming the first unknown system ID.
func CheckSystems(ids []string) error {
	for _, id := range ids {
		if !slices.Contains(AllSystems, id) {
			return fmt.Errorf("unknown system %q (want %s)", id, strings.Join(AllSystems, ", "))
		}
	}
	return nil
}

// runner is one run in progress.
type runner struct {
	cfg      Config
	sz       sizes
	start    time.Time
	deadline time.Time
	keys     *keySet
	progMu   sync.Mutex
}

// Run measures the configured systems and returns the report. It returns
// an error only for a bad Config; a system that fails is reported in its
// System.Error and in Report.Errors (see Report.Failed), and one that
// cannot run here (no redis-server) in its System.Missing. Cancelling ctx
// stops the run: what was measured so far is reported.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	return run(ctx, cfg, cfg.sizes())
}

// run is Run with the sizes given, for tests.
func run(ctx context.Context, cfg Config, sz sizes) (*Report, error) {
	if err := CheckSystems(cfg.Systems); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, sz: sz, start: time.Now()}
	r.deadline = r.start.Add(r.sz.budget)
	r.keys = newKeySet(max(r.sz.burst, r.sz.throughput, 4*r.sz.latencyOps))
	rep := &Report{Quick: cfg.Quick, Started: r.start, Machine: machineInfo(), Servers: map[string]string{},
		Settings: Settings{LatencyOps: r.sz.latencyOps, WarmupOps: r.sz.warmupOps, ThroughputEvents: r.sz.throughput,
			BurstEvents: r.sz.burst, Receivers: 4, KeyBytes: r.keys.sizeRange()}}
	want := func(id string) bool { return len(cfg.Systems) == 0 || slices.Contains(cfg.Systems, id) }
	groups := []struct {
		ids []string
		run func(ctx context.Context, rep *Report, want func(string) bool)
	}{
		{[]string{Floor}, r.runFloor},
		{[]string{Mesh}, r.runMesh},
		{[]string{NATS, NATSBridge}, r.runNATS},
		{[]string{Redis, RedisBridge}, r.runRedis},
		{[]string{Kafka, KafkaBridge}, r.runKafka},
	}
	for _, g := range groups {
		if !slices.ContainsFunc(g.ids, want) {
			continue
		}
		if err := ctx.Err(); err != nil {
			for _, id := range g.ids {
				if want(id) {
					rep.add(&System{ID: id, Name: systemNames[id], Missing: "the run was interrupted"})
				}
			}
			continue
		}
		g.run(ctx, rep, want)
	}
	rep.Elapsed = Seconds(time.Since(r.start).Seconds())
	rep.finish()
	return rep, nil
}

// remaining is the run's time left, less a reserve for stopping servers.
func (r *runner) remaining() time.Duration {
	return time.Until(r.deadline) - 2*time.Second
}

// bound returns a context for one phase: the phase's own bound, cut to
// what is left of the run's budget.
func (r *runner) bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, max(min(d, r.remaining()), 0))
}

// progress writes one line of progress.
func (r *runner) progress(format string, args ...any) {
	if r.cfg.Progress == nil {
		return
	}
	r.progMu.Lock()
	defer r.progMu.Unlock()
	fmt.Fprintf(r.cfg.Progress, "warp bench: %5.1fs  %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// errBudget marks a phase skipped because the run's time budget is spent.
var errBudget = errors.New("skipped: the run's time budget is spent")
