package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/warpmesh/warp/examples/cache/l1"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
)

func init() { subcommands = append(subcommands, newDemoCmd) }

type demoFlags struct {
	nodes   int
	zones   string
	events  int
	fanout  string
	profile string
	dbDelay time.Duration
	verbose bool
}

func newDemoCmd() *cobra.Command {
	f := demoFlags{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a local mesh with L1 caches on real UDP and show what the bus is for",
		Long: "demo starts a Warp Mesh of several nodes in three availability zones on\n" +
			"127.0.0.1 (real UDP sockets, encryption on, no broker, no configuration).\n" +
			"Each node keeps an L1 cache of user records in front of a slow database.\n" +
			"It shows reads going through the caches, an update invalidated with\n" +
			"PublishAndAwaitTopology and every node then reading the new value, a burst\n" +
			"of invalidations, a zone failing and an awaiting call failing fast with the\n" +
			"typed error, and a resync emptying a cache that fell behind.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.nodes, "nodes", 6, "number of nodes (2..64)")
	fl.StringVar(&f.zones, "zones", "eu-west-1a,eu-west-1b,eu-west-1c", "comma-separated zones, nodes are spread over them in turn")
	fl.IntVar(&f.events, "events", 10000, "invalidations to publish in the burst step")
	fl.StringVar(&f.fanout, "fanout", "auto", "fanout mode: auto, direct or relay")
	fl.StringVar(&f.profile, "profile", "local", "failure detection timing: local, lan or wan")
	fl.DurationVar(&f.dbDelay, "db-delay", 20*time.Millisecond, "how long a read of the fake database takes")
	fl.BoolVar(&f.verbose, "verbose", false, "log what the nodes do")
	return cmd
}

func (f demoFlags) check() (mesh.FanoutMode, []string, error) {
	if f.nodes < 2 || f.nodes > 64 {
		return 0, nil, usagef("--nodes %d out of range (2..64)", f.nodes)
	}
	if f.events < 0 || f.events > 1_000_000 {
		return 0, nil, usagef("--events %d out of range (0..1000000)", f.events)
	}
	if f.dbDelay < 0 || f.dbDelay > 10*time.Second {
		return 0, nil, usagef("--db-delay %v out of range (0..10s)", f.dbDelay)
	}
	mode, err := mesh.ParseFanoutMode(f.fanout)
	if err != nil {
		return 0, nil, usageError{err}
	}
	var zones []string
	for _, z := range strings.Split(f.zones, ",") {
		if z = strings.TrimSpace(z); z != "" {
			zones = append(zones, z)
		}
	}
	if len(zones) == 0 {
		return 0, nil, usagef("--zones: give at least one zone")
	}
	switch f.profile {
	case "local", "lan", "wan":
	default:
		return 0, nil, usagef("--profile %q unknown (want local, lan or wan)", f.profile)
	}
	return mode, zones, nil
}

// user is the record the demo's services cache.
type user struct {
	Name    string
	Version int
}

func (u user) String() string { return fmt.Sprintf("{%s v%d}", u.Name, u.Version) }

// slowDB is the demo's source of truth: a map behind a delay, as a
// database across the network would be.
type slowDB struct {
	delay time.Duration
	mu    sync.Mutex
	rows  map[string]user
	reads atomic.Int64
}

func (d *slowDB) get(ctx context.Context, key string) (user, error) {
	d.reads.Add(1)
	t := time.NewTimer(d.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return user{}, ctx.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if u, ok := d.rows[key]; ok {
		return u, nil
	}
	return user{Name: "user " + strings.TrimPrefix(key, "user:"), Version: 1}, nil
}

func (d *slowDB) put(key string, u user) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rows[key] = u
}

// demoNode is one service of the demo: a mesh node and its L1 cache.
type demoNode struct {
	bus   *mesh.MeshBus
	zone  string
	cache *l1.Cache[user]
	// consumer is held (write-locked) to make the cache's consumer stall,
	// as a busy service would.
	consumer sync.RWMutex
	done     chan struct{} // closed when the consumer has stopped
}

func (n *demoNode) label() string { return fmt.Sprintf("%s (%s)", n.bus.Name(), n.zone) }

// follow applies the bus's events of "user:" keys to the cache until the
// subscription closes. The subscription exists when it returns.
func (n *demoNode) follow(ctx context.Context) error {
	ch, err := n.bus.SubscribePrefix(ctx, "user:")
	if err != nil {
		return err
	}
	n.done = make(chan struct{})
	go func() {
		defer close(n.done)
		for ev := range ch {
			n.consumer.RLock()
			n.cache.Apply(ev)
			n.consumer.RUnlock()
		}
	}()
	return nil
}

// demoPrefixBuffer is the buffer of the demo's prefix subscriptions: the
// resync step overflows it on purpose.
const demoPrefixBuffer = 1024

func runDemo(ctx context.Context, out io.Writer, f demoFlags) error {
	mode, zones, err := f.check()
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	logger := slog.New(slog.DiscardHandler)
	if f.verbose {
		logger = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	db := &slowDB{delay: f.dbDelay, rows: map[string]user{}}

	subCtx, stopSubs := context.WithCancel(ctx)
	var nodes []*demoNode
	defer func() {
		stopSubs()
		closeNodes(nodes)
	}()

	say("Starting %d nodes in %d zones on 127.0.0.1 (UDP, encrypted, fanout %s)…", f.nodes, len(zones), mode)
	for i := range f.nodes {
		o := mesh.MeshOptions{
			NodeName:     fmt.Sprintf("node-%d", i+1),
			BindAddr:     "127.0.0.1",
			Port:         -1,
			Zone:         zones[i%len(zones)],
			Region:       "demo",
			Label:        "warp-demo",
			SecretKeys:   [][]byte{key},
			Profile:      f.profile,
			Fanout:       mode,
			PrefixBuffer: demoPrefixBuffer,
			Logger:       logger,
		}
		if i > 0 {
			o.Peers = []string{nodes[0].bus.Addr().String()}
		}
		b, err := mesh.NewMeshBus(o)
		if err != nil {
			return err
		}
		c, err := l1.New(100_000, db.get)
		if err != nil {
			_ = b.Close()
			return err
		}
		n := &demoNode{bus: b, zone: o.Zone, cache: c}
		nodes = append(nodes, n)
		if err := n.follow(subCtx); err != nil {
			return err
		}
		say("  %-8s zone %-12s %s", b.Name(), o.Zone, b.Addr())
	}
	if err := waitAlive(ctx, nodes, f.nodes, 20*time.Second); err != nil {
		return err
	}
	pub := nodes[0]
	say("All %d nodes see each other (fanout in use: %s).", f.nodes, pub.bus.Health().Mode)
	say("Each node keeps an L1 cache (otter) of user records in front of a slow database (%v a read).\n", f.dbDelay)

	// 1. Read-through.
	say("1. Read-through: every node reads user:42 twice.")
	for _, n := range nodes {
		t0 := time.Now()
		u, hit, err := n.cache.Get(ctx, "user:42")
		if err != nil {
			return err
		}
		first := time.Since(t0)
		t1 := time.Now()
		_, hit2, err := n.cache.Get(ctx, "user:42")
		if err != nil {
			return err
		}
		say("  %-22s %v  %s in %v, then %s in %v", n.label(), u, hitWord(hit), first.Round(time.Microsecond), hitWord(hit2), time.Since(t1))
	}

	// 2. Update and invalidate, awaiting two zones.
	needZones := min(2, len(zones))
	db.put("user:42", user{Name: "Ada King", Version: 2})
	before := invalidations(nodes)
	var rep syncbus.AckReport
	t0 := time.Now()
	if err := pub.bus.PublishAndAwaitTopology(ctx, "user:42", needZones, syncbus.WithAckReport(&rep)); err != nil {
		return err
	}
	ackLat := time.Since(t0)
	say("\n2. %s updates user:42 in the database, then PublishAndAwaitTopology(user:42, %d):", pub.bus.Name(), needZones)
	say("  returned after %v: zones %v applied the invalidation (nodes %v acked).", ackLat.Round(time.Microsecond), rep.Zones, rep.Nodes)
	// An ack means the event reached the node's subscriptions; the cache
	// applies it a moment later. Every node, not only the acked zones, gets
	// it: wait for all of them before reading.
	if err := waitFor(ctx, 10*time.Second, func() bool { return allAbove(invalidations(nodes), before, 1) }); err != nil {
		return fmt.Errorf("the invalidation did not reach every cache: %w", err)
	}
	fresh := 0
	for _, n := range nodes {
		t0 := time.Now()
		u, hit, err := n.cache.Get(ctx, "user:42")
		if err != nil {
			return err
		}
		if !hit && u.Version == 2 {
			fresh++
		}
		say("  %-22s %v  %s in %v", n.label(), u, hitWord(hit), time.Since(t0).Round(time.Microsecond))
	}
	say("  %d of %d nodes missed their cache and read the new value.", fresh, len(nodes))

	// 3. A burst of invalidations.
	if f.events > 0 {
		before := invalidations(nodes)
		resyncsBefore := resyncs(nodes)
		batches := pub.bus.Metrics().Batches
		t0 := time.Now()
		for i := range f.events {
			if err := pub.bus.Publish(ctx, fmt.Sprintf("user:%d", 100_000+i)); err != nil {
				return err
			}
		}
		// A cache is done when it applied every invalidation, or a resync
		// (which stands for the ones it could not get).
		caughtUp := func() bool {
			inv, rs := invalidations(nodes), resyncs(nodes)
			for i := range nodes {
				if inv[i]-before[i] < uint64(f.events) && rs[i] == resyncsBefore[i] {
					return false
				}
			}
			return true
		}
		if err := waitFor(ctx, 30*time.Second, caughtUp); err != nil {
			return fmt.Errorf("the burst did not reach every cache: %w", err)
		}
		el := time.Since(t0)
		rs := resyncs(nodes)
		var nres uint64
		for i := range nodes {
			nres += rs[i] - resyncsBefore[i]
		}
		say("\n3. Burst: %s invalidates %d keys with Publish.", pub.bus.Name(), f.events)
		say("  Every cache applied them after %v: %.0f invalidations/s delivered to each of the %d caches, in %d datagrams from %s; resyncs: %d.",
			el.Round(time.Millisecond), float64(f.events)/el.Seconds(), len(nodes), pub.bus.Metrics().Batches-batches, pub.bus.Name(), nres)
	}

	// 4. A zone stops: awaiting all zones fails fast, fewer still works.
	if len(zones) > 1 {
		lost := zones[len(zones)-1]
		var stopped, kept []*demoNode
		for _, n := range nodes {
			if n.zone == lost {
				stopped = append(stopped, n)
			} else {
				kept = append(kept, n)
			}
		}
		var names []string
		for _, n := range stopped {
			names = append(names, n.bus.Name())
		}
		say("\n4. Zone %s stops (%s leave).", lost, strings.Join(names, ", "))
		closeNodes(stopped)
		nodes = kept
		if err := waitAlive(ctx, nodes, len(nodes), 30*time.Second); err != nil {
			return err
		}
		t0 := time.Now()
		err := pub.bus.PublishAndAwaitTopology(ctx, "user:42", len(zones))
		el := time.Since(t0)
		var qe *syncbus.QuorumError
		switch {
		case errors.As(err, &qe) && qe.FailFast:
			say("  PublishAndAwaitTopology(user:42, %d) failed fast in %v, without sending:", len(zones), el.Round(time.Microsecond))
			say("    %v", err)
			say("    errors.Is(err, syncbus.ErrQuorumNotSatisfied) = %v; *syncbus.QuorumError: required %d, available %d, acked zones %v",
				errors.Is(err, syncbus.ErrQuorumNotSatisfied), qe.Required, qe.Available, qe.AckedZones)
		default:
			say("  PublishAndAwaitTopology(user:42, %d) after the zone stopped: %v (in %v)", len(zones), err, el.Round(time.Microsecond))
		}
		t0 = time.Now()
		if err := pub.bus.PublishAndAwaitTopology(ctx, "user:42", len(zones)-1, syncbus.WithAckReport(&rep)); err != nil {
			return err
		}
		say("  PublishAndAwaitTopology(user:42, %d) succeeds in %v: zones %v.", len(zones)-1, time.Since(t0).Round(time.Microsecond), rep.Zones)
	}

	// 5. A cache that falls behind is emptied by a resync.
	if len(nodes) > 1 {
		victim := nodes[1]
		for i := range 100 {
			if _, _, err := victim.cache.Get(ctx, fmt.Sprintf("user:%d", i+1)); err != nil {
				return err
			}
		}
		held := victim.cache.Stats().Size
		resyncsBefore := victim.cache.Stats().Resyncs
		busResyncs, dropped := victim.bus.Metrics().Resyncs, victim.bus.Metrics().Dropped
		burst := 3 * demoPrefixBuffer
		say("\n5. %s caches %d users; its consumer stalls (a busy service) while %s invalidates %d other keys,", victim.bus.Name(), held, pub.bus.Name(), burst)
		say("   more than its subscription buffers (%d events).", demoPrefixBuffer)
		victim.consumer.Lock()
		var pubErr error
		for i := range burst {
			if pubErr = pub.bus.Publish(ctx, fmt.Sprintf("user:resync:%d", i)); pubErr != nil {
				break
			}
		}
		overflowed := waitFor(ctx, 10*time.Second, func() bool { return victim.bus.Metrics().Resyncs > busResyncs })
		victim.consumer.Unlock()
		if pubErr != nil {
			return pubErr
		}
		if overflowed != nil {
			return fmt.Errorf("%s's subscription did not overflow: %w", victim.bus.Name(), overflowed)
		}
		if err := waitFor(ctx, 10*time.Second, func() bool { return victim.cache.Stats().Resyncs > resyncsBefore }); err != nil {
			return fmt.Errorf("the resync did not reach %s's cache: %w", victim.bus.Name(), err)
		}
		m := victim.bus.Metrics()
		say("  The bus could not hold them all (%d dropped) and sent one resync instead: the cache called InvalidateAll", m.Dropped-dropped)
		say("  and went from %d entries to %d. Nothing stale survives; the next reads go to the database.", held, victim.cache.Stats().Size)
	}

	m := pub.bus.Metrics()
	say("\n%s: published %d, acks received %d, retransmits %d, datagrams sent in zone %d / across zones %d, ack latency p50 ≤ %v; database reads %d.",
		pub.bus.Name(), m.Published, m.AcksReceived, m.Retransmits, m.SentLocal.Messages, m.SentRemote.Messages, m.AckLatency.Quantile(0.5), db.reads.Load())
	return nil
}

func hitWord(hit bool) string {
	if hit {
		return "hit"
	}
	return "miss → database"
}

func invalidations(nodes []*demoNode) []uint64 {
	out := make([]uint64, len(nodes))
	for i, n := range nodes {
		out[i] = n.cache.Stats().Invalidations
	}
	return out
}

func resyncs(nodes []*demoNode) []uint64 {
	out := make([]uint64, len(nodes))
	for i, n := range nodes {
		out[i] = n.cache.Stats().Resyncs
	}
	return out
}

// allAbove reports whether now[i] >= before[i]+d for every i.
func allAbove(now, before []uint64, d uint64) bool {
	for i := range now {
		if now[i] < before[i]+d {
			return false
		}
	}
	return true
}

// closeNodes closes the nodes at once: each leave takes a round trip, and
// they need not wait for each other. Their consumers end with their
// subscriptions.
func closeNodes(nodes []*demoNode) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			_ = n.bus.Close()
			if n.done != nil {
				<-n.done
			}
			n.cache.Close()
		})
	}
	wg.Wait()
}

// waitFor polls cond until it holds, timeout passes or ctx ends.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("not within %v", timeout)
		case <-tick.C:
		}
	}
	return nil
}

// waitAlive waits until every node sees n alive members.
func waitAlive(ctx context.Context, nodes []*demoNode, n int, timeout time.Duration) error {
	err := waitFor(ctx, timeout, func() bool {
		for _, d := range nodes {
			alive := 0
			for _, m := range d.bus.Members() {
				if m.State.Alive() {
					alive++
				}
			}
			if alive != n {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("the nodes did not converge to %d alive members: %w", n, err)
	}
	return nil
}
