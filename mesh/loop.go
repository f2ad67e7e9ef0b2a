package mesh

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/mesh/internal/protocol"
	"github.com/warpmesh/warp/wire"
)

// receiveBurst is how many datagrams the loop reads in one go before it
// acts on what they decided: deliveries and acks of a burst go out
// together, yet a burst never delays the timers for long.
const receiveBurst = 64

// loop is the event loop, the one owner of the protocol core: it feeds the
// core datagrams, membership changes, publishes and the clock, and carries
// out what the core decides.
func (b *MeshBus) loop() {
	defer close(b.loopDone)
	in := b.tr.Datagrams()
	changed := b.ml.Changed()
	timer := b.clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var armed time.Time // when timer fires; zero when stopped
	linger := b.clock.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	for {
		tick := false
		select {
		case <-b.done:
			b.finish()
			return
		case dg := <-in:
			now := b.clock.Now()
			b.core.SetRoom(b.disp.Room())
			b.receive(now, dg)
		burst:
			for range receiveBurst - 1 {
				select {
				case dg := <-in:
					b.receive(now, dg)
				default:
					break burst
				}
			}
		case <-b.in.wake:
		case <-changed:
		case <-timer.C():
			armed, tick = time.Time{}, true
		case <-linger.C():
			b.lingerUntil = time.Time{}
		}
		now := b.clock.Now()
		if err := b.syncView(now); err != nil {
			b.log.Error("mesh: membership snapshot unusable; keeping the previous view", "err", err)
		}
		if tick {
			b.core.SetRoom(b.disp.Room())
			b.core.Tick(now)
		}
		b.serveRequests(now)
		if until := b.pump(now); !until.IsZero() {
			linger.Reset(until.Sub(now))
		}
		b.act(now)
		// Re-arm only for an earlier time: a timer that fires early costs
		// one idle turn of the loop, a reset on every publish costs more.
		if next := b.core.NextTick(); !next.IsZero() && (armed.IsZero() || next.Before(armed)) {
			armed = next
			timer.Reset(max(next.Sub(now), 0))
		}
	}
}

// finish is the loop's last work, once Close was called: what was
// published before Close still leaves (credit or not), awaits in flight
// fail with syncbus.ErrClosed, every node gets a last digest.
func (b *MeshBus) finish() {
	now := b.clock.Now()
	b.serveRequests(now)
	for {
		b.batch = b.in.takeEvents(inboxLimit, b.batch)
		if len(b.batch) == 0 {
			break
		}
		b.core.Publish(now, b.batch...)
		clear(b.batch)
	}
	b.core.Close(now)
	b.act(now)
	b.publishStats()
}

// syncView gives the core the membership's current view when it changed.
func (b *MeshBus) syncView(now time.Time) error {
	snap := b.ml.Snapshot()
	if snap.Version == b.viewVersion {
		return nil
	}
	members := make([]protocol.Member, 0, len(snap.Nodes))
	for _, n := range snap.Nodes {
		if b.hidden != nil && b.hidden(n.Name) {
			continue
		}
		members = append(members, protocol.Member{
			Name: n.Name, Zone: n.Zone, Region: n.Region, Addr: n.Addr, Boot: n.Boot, State: n.State, Started: n.Started,
		})
	}
	if err := b.core.SetMembers(now, members); err != nil {
		return err
	}
	b.viewVersion = snap.Version
	b.topo.Store(b.core.Topology())
	b.topoVersion.Store(snap.Version)
	return nil
}

// serveRequests hands the core the awaited publishes, cancellations and
// calls that callers queued.
func (b *MeshBus) serveRequests(now time.Time) {
	awaits, cancels, calls := b.in.takeRequests()
	for _, r := range awaits {
		b.awaiting[r.id] = r
		b.core.Await(now, r.id, r.ev, r.req, r.deadline, r.report)
	}
	for _, c := range cancels {
		b.core.Cancel(now, c.id, c.cause)
	}
	for _, f := range calls {
		f(b.core)
	}
}

// pump moves queued events into the core, as many as it takes before its
// flow control holds them. Under moderate load — the last take moved
// several events less than BatchInterval ago — it lingers until a
// datagram's worth is queued or the oldest has waited BatchInterval, for
// fewer, fuller datagrams: it then returns when to look again.
func (b *MeshBus) pump(now time.Time) time.Time {
	room := b.core.PendingLimit() - b.core.Pending()
	if room <= 0 {
		return time.Time{}
	}
	n, first := b.in.queued()
	if n == 0 {
		return time.Time{}
	}
	interval := b.opts.BatchInterval
	loaded := b.lastTake >= 2 && now.Sub(b.lastTakeAt) < interval
	if loaded && n < int(b.in.fill.Load()) && !first.IsZero() {
		until := first.Add(interval)
		if now.Before(until) {
			if !b.lingerUntil.Equal(until) {
				b.lingerUntil = until
				return until
			}
			return time.Time{} // the linger timer is armed already
		}
	}
	b.lingerUntil = time.Time{}
	b.batch = b.in.takeEvents(room, b.batch)
	b.lastTake, b.lastTakeAt = len(b.batch), now
	b.core.Publish(now, b.batch...)
	clear(b.batch) // drop references to keys and clocks
	return time.Time{}
}

// receive opens one datagram and steps the core with it. Bad input is
// counted by reason and dropped; nothing here can fail the loop.
func (b *MeshBus) receive(now time.Time, dg *membership.Datagram) {
	from, n := dg.From, len(dg.Data)
	body, _, err := b.opener.Open(b.body[:0], dg.Data)
	dg.Release()
	if err != nil {
		b.refuse(wire.Reason(err), from, err)
		return
	}
	b.body = body[:0]
	traffic, err := b.core.Step(now, from, body)
	if err != nil {
		b.refuse(wire.Reason(err), from, err)
		return
	}
	if traffic == protocol.TrafficData {
		if b.core.IsRemote(from) {
			b.c.receivedRemote.add(n)
		} else {
			b.c.receivedLocal.add(n)
		}
	}
}

// act carries out what the core decided, in the order its contract asks:
// deliveries, then resyncs, then frames (acks among them: an ack follows
// the delivery it vouches for), then the outcomes of awaited publishes.
func (b *MeshBus) act(now time.Time) {
	if !b.core.HasReady() {
		return
	}
	rd := b.core.Ready()
	for i := range rd.Deliveries {
		ev := &rd.Deliveries[i]
		b.disp.Deliver(*ev)
		b.rec.DeliveryDelay(now.Sub(ev.Time))
	}
	for _, origin := range rd.Resyncs {
		b.disp.Resync(origin)
	}
	for i := range rd.Messages {
		b.sendMessage(&rd.Messages[i])
	}
	for _, out := range rd.Outcomes {
		if r := b.awaiting[out.ID]; r != nil {
			delete(b.awaiting, out.ID)
			r.done <- out
		}
	}
	for _, d := range rd.FlowStalls {
		b.rec.FlowStall(d)
	}
	for _, a := range rd.Strangers {
		b.ml.Contact(a) // gossip missed a node that talks to us
	}
	b.core.Advance()
}

// publishStats keeps the core's last counters for Metrics once the loop
// has stopped.
func (b *MeshBus) publishStats() {
	s := b.core.Stats()
	b.statsMu.Lock()
	b.stats = s
	b.statsMu.Unlock()
}

// coreStats returns the core's counters: asked of the loop while it runs
// (the core is its alone), the last ones it kept after.
func (b *MeshBus) coreStats() protocol.Stats {
	var s protocol.Stats
	if b.do(func(c *protocol.Core) { s = c.Stats() }) == nil {
		return s
	}
	b.statsMu.Lock()
	defer b.statsMu.Unlock()
	return b.stats
}

// refuse counts a datagram dropped for reason and logs it, at most once a
// second: a node with a wrong key or label, or under attack, says so
// without letting a flood of bad datagrams flood its log.
func (b *MeshBus) refuse(reason string, from netip.AddrPort, err error) {
	b.c.drop(reason)
	if !b.refusalLog.Allow() {
		return
	}
	b.log.Warn("mesh: dropped a datagram (at most one such message a second)",
		"reason", reason, "from", from, "err", fmt.Sprint(err), "drops", b.c.dropsSnapshot())
}
