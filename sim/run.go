package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
)

// RunOptions are a run's options beyond its Scenario.
type RunOptions struct {
	// Progress, if not nil, is called from the run's goroutine about ten
	// times a second of wall-clock time, and once at each phase's start.
	Progress func(Progress)
	// Logger receives the nodes' logs (default: discarded).
	Logger *slog.Logger
}

// Progress is how far a run is.
type Progress struct {
	// Phase is "starting", "publishing", "settling" or "stopping".
	Phase string
	// Done and Total are the phase's simulated time elapsed and planned
	// (zero for starting and stopping, whose length is not known).
	Done, Total time.Duration
}

// keyPrefix starts every key a run publishes; the event's number follows.
const keyPrefix = "e/"

// Run builds the scenario's cluster on a simulated network, waits until
// it converges, publishes and injects faults as the scenario says, waits
// for the last events to settle and returns what it measured. A scenario
// that does not validate is an error naming its bad fields; so is a
// cluster that does not converge before ctx ends. Everything Run starts is
// stopped before it returns.
func Run(ctx context.Context, sc Scenario, opts RunOptions) (*Report, error) {
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("sim: scenario %s: %w", sc.Name, err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	scale := sc.TimeScale
	if scale == 0 {
		scale = AutoScale(sc.NodeCount())
	}
	r := &runner{sc: sc, opts: opts, ctx: ctx, lives: map[string]*life{}, quit: make(chan struct{}), stopPub: make(chan struct{})}
	r.progress("starting", 0, 0)
	wallStart := time.Now()
	c, err := NewCluster(ctx, ClusterConfig{
		Nodes: sc.nodeSpecs(), Seed: sc.Seed, TimeScale: scale,
		Intra: sc.Intra, Inter: sc.Inter, Links: sc.Links,
		Profile: sc.Profile, Heartbeat: sc.Heartbeat, Fanout: sc.Fanout,
		Logger: opts.Logger,
		Options: func(_ int, o *mesh.MeshOptions) {
			if sc.NodeCount() > 100 {
				// The run's reader takes every event at once; the
				// default buffer (8192 events) would cost a gigabyte
				// at a thousand nodes.
				o.PrefixBuffer = 1024
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("sim: scenario %s (seed %d): %w", sc.Name, sc.Seed, err)
	}
	r.c, r.net = c, c.Network()
	converged := time.Since(wallStart)
	defer c.Close()
	for _, n := range c.Nodes() {
		if err := r.subscribe(n); err != nil {
			return nil, err
		}
	}
	mode := c.Node(0).Bus().Health().Mode
	base := r.net.Stats()

	r.t0 = time.Now()
	var pubs sync.WaitGroup
	for i, p := range sc.Publish {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			r.publisher(i, p)
		}()
	}
	for i, f := range sc.Faults {
		r.faults.Add(1)
		go func() {
			defer r.faults.Done()
			r.fault(i, f)
		}()
	}
	r.waitPhase("publishing", 0, sc.Duration)
	close(r.stopPub)
	pubs.Wait()
	r.awaits.Wait()
	settleFrom := r.since()
	r.settle(settleFrom, sc.Settle)
	end := r.since()
	stats := r.net.Stats().Sub(base)
	// Each bus answers from its own event loop: ask them all at once.
	var stalls atomic.Uint64
	var asked sync.WaitGroup
	for _, b := range c.Buses() {
		asked.Add(1)
		go func() {
			defer asked.Done()
			stalls.Add(b.Metrics().FlowStalls)
		}()
	}
	asked.Wait()

	r.progress("stopping", 0, 0)
	close(r.quit)
	r.faults.Wait()
	_ = c.Close()
	for _, l := range r.allLives() {
		<-l.done
	}
	rep := r.report(end, stats)
	rep.Fanout = mode
	rep.TimeScale = scale
	rep.ConvergeMs = ms(r.net.Sim(converged))
	rep.FlowStalls = stalls.Load()
	rep.WallSeconds = time.Since(wallStart).Seconds()
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("sim: scenario %s (seed %d) interrupted: %w", sc.Name, sc.Seed, err)
	}
	return rep, nil
}

// runner is one run's state.
type runner struct {
	sc   Scenario
	opts RunOptions
	ctx  context.Context
	c    *Cluster
	net  *Network
	t0   time.Time

	stopPub chan struct{} // publishing ends
	quit    chan struct{} // the run ends: faults revert
	faults  sync.WaitGroup
	awaits  sync.WaitGroup

	mu      sync.Mutex
	events  []*pubEvent
	lives   map[string]*life // each node's current one
	all     []*life
	skipped int
	windows []FaultWindow
}

// pubEvent is one event published.
type pubEvent struct {
	idx    int
	key    string
	node   string
	zone   string
	life   *life
	mode   string // "eventual", "replicas=2", "zones=3"
	at     time.Time
	mu     sync.Mutex
	err    error
	done   time.Time
	acked  []string // nodes that acknowledged a successful await
	result string   // "" (ok), or why an await failed
}

// life is one incarnation of a node: its bus and the subscription that
// records what it delivers.
type life struct {
	name, zone string
	bus        *mesh.MeshBus
	ready      time.Time // events published from here on are expected
	done       chan struct{}

	mu      sync.Mutex
	ended   time.Time
	got     map[int]time.Time
	dups    int
	resyncs []resync
}

type resync struct {
	at     time.Time
	origin string
}

// since returns the simulated time since publishing started.
func (r *runner) since() time.Duration { return r.net.Sim(time.Since(r.t0)) }

// wallAt returns the wall-clock time of simulated time at.
func (r *runner) wallAt(at time.Duration) time.Time { return r.t0.Add(r.net.Wall(at)) }

func (r *runner) progress(phase string, done, total time.Duration) {
	if r.opts.Progress != nil {
		r.opts.Progress(Progress{Phase: phase, Done: done, Total: total})
	}
}

// waitPhase waits until simulated time to, reporting progress.
func (r *runner) waitPhase(phase string, from, to time.Duration) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(time.Until(r.wallAt(to)))
	defer deadline.Stop()
	for {
		r.progress(phase, min(r.since()-from, to-from), to-from)
		select {
		case <-deadline.C:
			r.progress(phase, to-from, to-from)
			return
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sleepUntil waits until simulated time at; false when stop closes or
// the run is cancelled first.
func (r *runner) sleepUntil(at time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(time.Until(r.wallAt(at))) // the scenario's clock, not synchronisation
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	case <-r.ctx.Done():
		return false
	}
}

// subscribe starts recording what node n's current bus delivers.
func (r *runner) subscribe(n *Node) error {
	b := n.Bus()
	if b == nil {
		return nil
	}
	ch, err := b.SubscribePrefix(context.Background(), keyPrefix)
	if err != nil {
		return fmt.Errorf("sim: subscribe on %s: %w", n.Name(), err)
	}
	l := &life{name: n.Name(), zone: n.Zone(), bus: b, ready: time.Now(), done: make(chan struct{}), got: map[int]time.Time{}}
	go func() {
		defer close(l.done)
		for ev := range ch {
			now := time.Now()
			l.mu.Lock()
			if ev.Op == syncbus.OpResync {
				l.resyncs = append(l.resyncs, resync{at: now, origin: ev.Origin})
			} else if idx, err := strconv.Atoi(strings.TrimPrefix(ev.Key, keyPrefix)); err == nil {
				if _, dup := l.got[idx]; dup {
					l.dups++
				} else {
					l.got[idx] = now
				}
			}
			l.mu.Unlock()
		}
	}()
	r.mu.Lock()
	r.lives[n.Name()] = l
	r.all = append(r.all, l)
	r.mu.Unlock()
	return nil
}

func (r *runner) allLives() []*life {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

// endLife marks node name's current life as ended now.
func (r *runner) endLife(name string) {
	r.mu.Lock()
	l := r.lives[name]
	delete(r.lives, name)
	r.mu.Unlock()
	if l != nil {
		l.mu.Lock()
		l.ended = time.Now()
		l.mu.Unlock()
	}
}

func (r *runner) currentLife(name string) *life {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lives[name]
}

// publisher publishes p's events on schedule until its Stop or the end of
// publishing.
func (r *runner) publisher(i int, p Publisher) {
	names := r.sc.publishers(p)
	rng := rand.New(rand.NewPCG(r.sc.Seed, 0x70756200+uint64(i))) // "pub"
	period := time.Duration(float64(time.Second) / p.Rate)
	label := string(p.Mode)
	if p.Mode != Eventual {
		label = fmt.Sprintf("%s=%d", p.Mode, p.Need)
	}
	for k := 0; ; k++ {
		at := p.Start + time.Duration(k)*period
		if at >= p.Stop {
			return
		}
		if !r.sleepUntil(at, r.stopPub) {
			return
		}
		name := names[rng.IntN(len(names))]
		r.publishOne(name, p, label)
	}
}

func (r *runner) publishOne(name string, p Publisher, label string) {
	l := r.currentLife(name)
	if l == nil {
		r.mu.Lock()
		r.skipped++
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	ev := &pubEvent{idx: len(r.events), node: name, zone: l.zone, life: l, mode: label, at: time.Now()}
	ev.key = keyPrefix + strconv.Itoa(ev.idx)
	r.events = append(r.events, ev)
	r.mu.Unlock()
	if p.Mode == Eventual {
		err := l.bus.Publish(r.ctx, ev.key)
		ev.mu.Lock()
		ev.err, ev.done = err, time.Now()
		ev.mu.Unlock()
		return
	}
	r.awaits.Add(1)
	go func() {
		defer r.awaits.Done()
		ctx, cancel := context.WithTimeout(r.ctx, r.net.Wall(p.Timeout))
		defer cancel()
		var rep syncbus.AckReport
		var err error
		if p.Mode == Replicas {
			err = l.bus.PublishAndAwait(ctx, ev.key, p.Need, syncbus.WithAckReport(&rep))
		} else {
			err = l.bus.PublishAndAwaitTopology(ctx, ev.key, p.Need, syncbus.WithAckReport(&rep))
		}
		ev.mu.Lock()
		defer ev.mu.Unlock()
		ev.done = time.Now()
		ev.err = err
		ev.acked = rep.Nodes
		ev.result = awaitOutcome(err)
	}()
}

// awaitOutcome names why an awaited publish failed ("" for success).
func awaitOutcome(err error) string {
	var qe *syncbus.QuorumError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &qe) && qe.FailFast:
		return "fail-fast"
	case errors.As(err, &qe):
		return "deadline"
	case errors.Is(err, syncbus.ErrClosed):
		return "closed"
	case errors.Is(err, syncbus.ErrBackpressure):
		return "backpressure"
	}
	return "other"
}

// settle waits until every expected event arrived or was announced by a
// resync everywhere, at most the settle time.
func (r *runner) settle(from, limit time.Duration) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		done := r.since() - from
		r.progress("settling", min(done, limit), limit)
		if done >= limit || r.outstanding() == 0 {
			return
		}
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// outstanding counts expected deliveries on running lives that neither
// arrived nor were announced by a resync.
func (r *runner) outstanding() int {
	r.mu.Lock()
	events := slices.Clone(r.events)
	lives := make([]*life, 0, len(r.lives))
	for _, l := range r.lives {
		lives = append(lives, l)
	}
	r.mu.Unlock()
	n := 0
	for _, l := range lives {
		l.mu.Lock()
		for _, ev := range events {
			if r.expected(ev, l) {
				if _, ok := l.got[ev.idx]; !ok && !l.coveredLocked(ev) {
					n++
				}
			}
		}
		l.mu.Unlock()
	}
	return n
}

// expected reports whether ev should reach l: it was sent (its publish
// did not fail before sending: an awaited publish that failed fast, or
// any publish refused by a closed or backed-up bus, sent nothing), l was
// ready then and ran for the window after, and so did the publisher's
// life (an event its crashing node never sent is nobody's loss). Called
// with l.mu held.
func (r *runner) expected(ev *pubEvent, l *life) bool {
	ev.mu.Lock()
	unsent := ev.err != nil && ev.result != "deadline"
	ev.mu.Unlock()
	if unsent || ev.at.Before(l.ready) {
		return false
	}
	win := r.net.Wall(r.sc.Window)
	if !l.ended.IsZero() && l.ended.Before(ev.at.Add(win)) {
		return false
	}
	if ev.life != l {
		ev.life.mu.Lock()
		pend := ev.life.ended
		ev.life.mu.Unlock()
		if !pend.IsZero() && pend.Before(ev.at.Add(win)) {
			return false
		}
	}
	return true
}

// coveredLocked reports whether a resync on l announced that ev may be
// missing: one after ev was published, naming ev's origin or no one.
func (l *life) coveredLocked(ev *pubEvent) bool {
	for _, rs := range l.resyncs {
		if !rs.at.Before(ev.at) && (rs.origin == "" || rs.origin == ev.node) {
			return true
		}
	}
	return false
}

// restart restarts node n and starts recording its new life.
func (r *runner) restart(n *Node) {
	r.endLife(n.Name())
	ctx, cancel := context.WithTimeout(r.ctx, r.net.Wall(30*time.Second))
	defer cancel()
	_, err := r.c.Restart(ctx, n)
	if err != nil && n.Bus() == nil {
		r.opts.Logger.Warn("sim: restart failed", "node", n.Name(), "err", err)
		return
	}
	_ = r.subscribe(n)
}

// crash crashes node n.
func (r *runner) crash(n *Node) {
	r.endLife(n.Name())
	r.c.Crash(n)
}

// nodes returns the named nodes, or the nodes of the named zones.
func (r *runner) nodes(names, zones []string) []*Node {
	var out []*Node
	for _, n := range r.c.Nodes() {
		if slices.Contains(names, n.Name()) || slices.Contains(zones, n.Zone()) {
			out = append(out, n)
		}
	}
	return out
}

func hostsOf(nodes []*Node) []*Host {
	out := make([]*Host, len(nodes))
	for i, n := range nodes {
		out[i] = n.host
	}
	return out
}

// hold waits for a fault's length (or until the run ends when it has
// none).
func (r *runner) hold(f Fault) {
	if f.For > 0 {
		r.sleepUntil(f.At+f.For, r.quit)
		return
	}
	select {
	case <-r.quit:
	case <-r.ctx.Done():
	}
}

// fault carries out fault i at its time and reverts it after its length.
func (r *runner) fault(i int, f Fault) {
	if !r.sleepUntil(f.At, r.quit) {
		return
	}
	w := FaultWindow{Kind: string(f.Kind), FromMs: ms(r.since())}
	targets := strings.Join(append(slices.Clone(f.Zones), f.Nodes...), " ")
	w.Label = fmt.Sprintf("%s %s", f.Kind, targets)
	switch f.Kind {
	case FaultPartition:
		a := hostsOf(r.nodes(f.Nodes, f.Zones))
		var b []*Host
		if len(f.To) > 0 {
			b = hostsOf(r.nodes(nil, f.To))
		}
		p := r.net.Partition(a, b, f.OneWay)
		r.hold(f)
		p.Heal()
	case FaultCrash:
		nodes := r.nodes(f.Nodes, nil)
		for _, n := range nodes {
			r.crash(n)
		}
		if f.For > 0 {
			r.hold(f)
			for _, n := range nodes {
				r.restart(n)
			}
		}
	case FaultCrashRelay:
		n := r.crashRelay(f.Zones[0])
		if n == nil {
			return
		}
		w.FromMs = ms(r.since())
		w.Label = "crash-relay " + n.Name()
		if f.For > 0 {
			r.sleepUntil(r.since()+f.For, r.quit)
			r.restart(n)
		}
	case FaultRestart:
		for _, n := range r.nodes(f.Nodes, nil) {
			r.restart(n)
		}
	case FaultRollingRestart:
		nodes := r.c.Nodes()
		if len(f.Nodes) > 0 {
			nodes = r.nodes(f.Nodes, nil)
		}
		next := f.At
		for _, n := range nodes {
			if !r.sleepUntil(next, r.quit) {
				break
			}
			r.restart(n)
			next = max(next+f.Every, r.since())
		}
		w.Label = fmt.Sprintf("rolling restart of %d nodes", len(nodes))
	case FaultPause:
		hosts := hostsOf(r.nodes(f.Nodes, nil))
		for _, h := range hosts {
			h.Pause()
		}
		r.hold(f)
		for _, h := range hosts {
			h.Resume()
		}
	case FaultLink:
		from, to := f.Zones, f.To
		if len(from) == 0 {
			from = r.sc.zoneNames()
		}
		if len(to) == 0 {
			to = r.sc.zoneNames()
		}
		type saved struct {
			a, b string
			l    Link
		}
		var old []saved
		for _, a := range from {
			for _, b := range to {
				for _, dir := range [][2]string{{a, b}, {b, a}} {
					if l, ok := r.net.LinkOf(dir[0], dir[1]); ok {
						old = append(old, saved{dir[0], dir[1], l})
					}
				}
			}
		}
		for _, s := range old {
			_ = r.net.SetLink(s.a, s.b, f.Link)
		}
		w.Label = fmt.Sprintf("link %s -> %s: loss %g, latency %v", strings.Join(from, ","), strings.Join(to, ","), f.Link.Loss, f.Link.Latency)
		r.hold(f)
		for _, s := range slices.Backward(old) {
			_ = r.net.SetLink(s.a, s.b, s.l)
		}
	}
	w.ToMs = ms(r.since())
	r.mu.Lock()
	r.windows = append(r.windows, w)
	r.mu.Unlock()
}

// crashRelay waits for the next events frame from another zone to a node
// of zone, drops it and crashes its receiver — a relay, in relay mode —
// and returns that node (nil if the run ended first).
func (r *runner) crashRelay(zone string) *Node {
	inside := hostsOf(r.nodes(nil, []string{zone}))
	m := Match{Kinds: []Kind{KindEvents}, OnlyFirst: true}
	for _, h := range inside {
		m.To = append(m.To, h.addr)
	}
	for _, h := range r.net.Hosts() {
		if h.zone.name != zone {
			m.From = append(m.From, h.addr)
		}
	}
	hit := make(chan *Host, 1)
	var fired atomic.Bool
	rule := r.net.Hook(m, func(p Packet) Verdict {
		if fired.Swap(true) {
			return Verdict{}
		}
		h := r.net.HostAt(p.To)
		h.Crash() // mid-publish: the relay dies holding the event
		hit <- h
		return Verdict{Drop: true}
	})
	defer rule.Remove()
	select {
	case h := <-hit:
		n := r.c.NodeNamed(h.name)
		r.crash(n)
		return n
	case <-r.quit:
	case <-r.ctx.Done():
	}
	return nil
}

// report builds the report from what was recorded, up to simulated time
// end.
func (r *runner) report(end time.Duration, stats Stats) *Report {
	sc := r.sc
	rep := &Report{
		Scenario: sc.Name, Description: sc.Description, Seed: sc.Seed,
		Nodes: sc.NodeCount(), Zones: sc.zoneNames(),
		DurationMs: ms(sc.Duration), WindowMs: ms(sc.Window),
		Skipped: r.skipped, Network: stats, FailedAwaits: map[string]int{},
		Repairs:         stats.Repairs.Total().Datagrams,
		Retransmissions: stats.Retransmits.Total().Datagrams,
	}
	win := r.net.Wall(sc.Window)
	toMs := func(d time.Duration) float64 { return ms(r.net.Sim(d)) }

	byNode := map[string]*NodeDelivery{}
	var nodeOrder []string
	for _, n := range sc.nodeSpecs() {
		byNode[n.Name] = &NodeDelivery{Node: n.Name, Zone: n.Zone}
		nodeOrder = append(nodeOrder, n.Name)
	}
	pairs := map[[2]string][]float64{}
	bucket := max(r.net.Wall(end)/100, time.Millisecond)
	timeline := make([]TimelinePoint, int(r.net.Wall(end)/bucket)+1)
	for i := range timeline {
		timeline[i].AtMs = toMs(time.Duration(i) * bucket)
	}
	at := func(t time.Time) int { return min(max(int(t.Sub(r.t0)/bucket), 0), len(timeline)-1) }

	acks := map[string][]float64{}
	ackOK, ackFailed := map[string]int{}, map[string]int{}
	var modes []string
	for _, ev := range r.events {
		ev.mu.Lock()
		err, result, done, acked := ev.err, ev.result, ev.done, ev.acked
		ev.mu.Unlock()
		rep.Published++
		timeline[at(ev.at)].Published++
		if ev.mode != string(Eventual) {
			if !slices.Contains(modes, ev.mode) {
				modes = append(modes, ev.mode)
			}
			if err == nil {
				ackOK[ev.mode]++
				acks[ev.mode] = append(acks[ev.mode], toMs(done.Sub(ev.at)))
				rep.FalseAcks += r.falseAcks(ev, acked)
			} else {
				ackFailed[ev.mode]++
				rep.FailedAwaits[result]++
			}
		} else if err != nil {
			rep.PublishErrors++
		}
	}
	for _, l := range r.all {
		nd := byNode[l.name]
		l.mu.Lock()
		rep.Resyncs += len(l.resyncs)
		nd.Duplicates += l.dups
		for idx, t := range l.got {
			timeline[at(t)].Delivered++
			if idx < len(r.events) && r.events[idx].life != l {
				ev := r.events[idx]
				pairs[[2]string{ev.zone, l.zone}] = append(pairs[[2]string{ev.zone, l.zone}], toMs(t.Sub(ev.at)))
			}
		}
		for _, ev := range r.events {
			if !r.expected(ev, l) {
				continue
			}
			nd.Expected++
			if t, ok := l.got[ev.idx]; ok {
				nd.Delivered++
				if t.Sub(ev.at) <= win {
					nd.Within++
				} else {
					nd.Late++
				}
				continue
			}
			nd.Missing++
			if l.coveredLocked(ev) {
				nd.Resynced++
			} else {
				nd.Silent++
			}
		}
		l.mu.Unlock()
	}
	byZone := map[string]*ZoneDelivery{}
	for _, z := range rep.Zones {
		byZone[z] = &ZoneDelivery{Zone: z}
	}
	for _, name := range nodeOrder {
		nd := byNode[name]
		nd.finish()
		rep.ByNode = append(rep.ByNode, *nd)
		byZone[nd.Zone].add(nd.Delivery)
		rep.Delivery.add(nd.Delivery)
	}
	for _, z := range rep.Zones {
		byZone[z].finish()
		rep.ByZone = append(rep.ByZone, *byZone[z])
	}
	rep.Delivery.finish()
	for _, a := range rep.Zones {
		for _, b := range rep.Zones {
			if s := pairs[[2]string{a, b}]; len(s) > 0 {
				rep.Latency = append(rep.Latency, PairLatency{From: a, To: b, Latencies: summarize(s)})
			}
		}
	}
	for _, m := range modes {
		rep.Acks = append(rep.Acks, AckLatency{Mode: m, OK: ackOK[m], Failed: ackFailed[m], Latencies: summarize(acks[m])})
	}
	if rep.Published > 0 {
		e := float64(rep.Published)
		data := []Flow{stats.Events, stats.Retransmits, stats.Acks, stats.Repairs, stats.Digests, stats.Credits, stats.Unclassified}
		var dw, da, bw, ba uint64
		for _, f := range data {
			dw += f.Within.Datagrams
			da += f.Across.Datagrams
			bw += f.Within.Bytes
			ba += f.Across.Bytes
		}
		rep.PerEvent = PerEvent{
			EventDatagramsWithin: float64(stats.Events.Within.Datagrams) / e,
			EventDatagramsAcross: float64(stats.Events.Across.Datagrams) / e,
			EventBytesWithin:     float64(stats.Events.Within.Bytes) / e,
			EventBytesAcross:     float64(stats.Events.Across.Bytes) / e,
			DataDatagramsWithin:  float64(dw) / e,
			DataDatagramsAcross:  float64(da) / e,
			DataBytesWithin:      float64(bw) / e,
			DataBytesAcross:      float64(ba) / e,
		}
	}
	rep.Faults = slices.Clone(r.windows)
	slices.SortFunc(rep.Faults, func(a, b FaultWindow) int {
		switch {
		case a.FromMs < b.FromMs:
			return -1
		case a.FromMs > b.FromMs:
			return 1
		}
		return 0
	})
	rep.Timeline = timeline
	return rep
}

// falseAcks counts the nodes that acknowledged ev but never delivered it.
func (r *runner) falseAcks(ev *pubEvent, acked []string) int {
	bad := 0
	for _, name := range acked {
		found := false
		for _, l := range r.all {
			if l.name != name {
				continue
			}
			l.mu.Lock()
			_, ok := l.got[ev.idx]
			l.mu.Unlock()
			found = found || ok
		}
		if !found {
			bad++
		}
	}
	return bad
}
