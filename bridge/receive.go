package bridge

import (
	"fmt"
	"sync"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// originKey names one incarnation of a publishing node.
type originKey struct {
	origin string
	boot   uint64
}

// window follows the numbering of one incarnation's events. The broker
// keeps one publisher's messages in order, so a number beyond the next one
// means events were lost on the way (a failed send, a dropped message) and
// the subscriptions must resync; a number already passed is a duplicate (a
// replay, Kafka after a rebalance).
type window struct {
	last    uint64
	started bool
	// from is the lowest number the window accounts for: the first it
	// accepted, or the one after the digest that began it.
	from uint64
	// clock is the origin's clock as seen from here, for coveredByResync.
	clock originClock
	seen  time.Time
}

// accept records seq: fresh is false for a duplicate, gap true when numbers
// were skipped.
func (w *window) accept(seq uint64) (fresh, gap bool) {
	switch {
	case !w.started:
		w.started, w.last, w.from = true, seq, seq
		return true, false
	case seq <= w.last:
		return false, false
	case seq == w.last+1:
		w.last = seq
		return true, false
	default:
		w.last = seq
		return true, true
	}
}

// originClock bounds, on this node's monotonic clock, when an event of one
// origin was published, from its Time (the origin's wall clock). An event
// with Time t, received here at a, shows that the origin's clock reads t
// no later than a; so an event with Time u was published no later than
// a+(u-t) here. The pair with the smallest a-t gives the tightest bound;
// no assumption on the clocks' skew is needed, only that neither steps
// back meanwhile.
type originClock struct {
	at   time.Time // when the reference event arrived here (monotonic)
	t    int64     // its Time
	have bool
}

// observe offers the event with Time t, received at a, as the reference.
func (o *originClock) observe(a time.Time, t int64) {
	if !o.have {
		o.at, o.t, o.have = a, t, true
		return
	}
	// a-t < o.at-o.t  <=>  a-o.at < t-o.t
	if dt, ok := sub(t, o.t); ok && a.Sub(o.at) < time.Duration(dt) {
		o.at, o.t = a, t
	}
}

// before reports whether the event with Time u was certainly published
// here no later than at.
func (o *originClock) before(u int64, at time.Time) bool {
	if !o.have || at.IsZero() {
		return false
	}
	du, ok := sub(u, o.t)
	return ok && time.Duration(du) <= at.Sub(o.at)
}

// sub is a-b, with ok false when it overflows (a foreign Time).
func sub(a, b int64) (d int64, ok bool) {
	d = a - b
	return d, (d < a) == (b > 0)
}

// recvState is the receiving side's shared state.
type recvState struct {
	mu      sync.Mutex
	windows map[originKey]*window
	// down is true from a disconnection until the reconnection, whose
	// resync of everything covers whatever was lost meanwhile.
	down bool
	// resyncAt is when the last resync of everything began (reconnection,
	// a drop the client reported): it covers every event published before.
	resyncAt time.Time
}

func (r *recvState) init() { r.windows = make(map[originKey]*window) }

// disconnected notes that a resync of everything is to come.
func (r *recvState) disconnected() {
	r.mu.Lock()
	r.down = true
	r.mu.Unlock()
}

// resynced notes a resync of everything, just before the subscriptions get
// it: events published until now are covered.
func (r *recvState) resynced() {
	r.mu.Lock()
	r.down = false
	r.resyncAt = time.Now()
	r.mu.Unlock()
}

// coveredByResync reports, under mu, whether the events missing before
// one of w's origin with Time u (not relayed: a relayed event bears
// another clock's Time) are covered by a resync of everything: one is to
// come, or they were published before the last one began. The publisher
// gives its own events nondecreasing Times in the order of their numbers
// (sender.number), so the missing ones are no later than u. A loss after
// that resync — the publisher's sends failing once this node was back —
// is not covered and resyncs again. A loss that cannot be placed (a
// relayed event, a new reference) resyncs too: a resync more rather than
// a silent loss.
func (r *recvState) coveredByResync(w *window, u int64, relayed bool) bool {
	if r.down {
		return true
	}
	return !relayed && w.clock.before(u, r.resyncAt)
}

// gc forgets windows not heard from since before.
func (r *recvState) gc(before time.Time) {
	r.mu.Lock()
	for k, w := range r.windows {
		if w.seen.Before(before) {
			delete(r.windows, k)
		}
	}
	r.mu.Unlock()
}

// scratch is one receive's working memory, pooled.
type scratch struct {
	body     []byte
	events   wire.Events
	acks     wire.Acks
	presence wire.Presence
	deliver  []syncbus.Event
	seqs     []uint64
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func (c *Core) receive(data []byte, reply string) {
	if c.err != nil || c.closed.Load() {
		return
	}
	c.c.received.add(len(data))
	if !wire.IsFrame(data) {
		c.refuse("foreign", fmt.Errorf("bridge: a message of %d bytes that is not a frame", len(data)))
		return
	}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	body, _, err := c.opener.Open(s.body[:0], data)
	if err != nil {
		c.refuse(wire.Reason(err), err)
		return
	}
	s.body = body[:0]
	typ, err := wire.PeekType(body)
	if err != nil {
		c.refuse(wire.Reason(err), err)
		return
	}
	switch typ {
	case wire.FrameEvents:
		if err = wire.DecodeEvents(body, &s.events); err == nil {
			c.onEvents(s, reply)
		}
	case wire.FrameAcks:
		if err = wire.DecodeAcks(body, &s.acks); err == nil {
			c.onAcks(&s.acks)
		}
	case wire.FrameDigest:
		var d wire.Digest
		if err = wire.DecodeDigest(body, &d); err == nil {
			c.onDigest(&d)
		}
	case wire.FramePresence:
		if err = wire.DecodePresence(body, &s.presence); err == nil {
			c.onPresence(&s.presence)
		}
	default:
		err = fmt.Errorf("bridge: unexpected %v frame", typ)
		c.refuse("unexpected", err)
		return
	}
	if err != nil {
		c.refuse(wire.Reason(err), err)
	}
}

// onEvents delivers a frame's new events, resyncs on a gap in its
// publisher's numbering, and acknowledges the events whose publisher waits.
func (c *Core) onEvents(s *scratch, reply string) {
	f := &s.events
	if f.Origin == c.name {
		if f.Boot != c.boot {
			c.refuse("own-name", fmt.Errorf("bridge: events of another node named %q (incarnation %x): node names must be unique", f.Origin, f.Boot))
		}
		return // our own frame, back from the broker: delivered when published
	}
	now := time.Now()
	s.deliver, s.seqs = s.deliver[:0], s.seqs[:0]
	gap := false
	c.recv.mu.Lock()
	k := originKey{f.Origin, f.Boot}
	w := c.recv.windows[k]
	if w == nil {
		w = &window{}
		c.recv.windows[k] = w
	}
	w.seen = now
	for i := range f.Events {
		ev := &f.Events[i]
		relayed := ev.Flags&wire.EventRelayed != 0
		if !relayed {
			w.clock.observe(now, ev.Time)
		}
		fresh, skipped := w.accept(ev.Seq)
		if skipped && !c.recv.coveredByResync(w, ev.Time, relayed) {
			gap = true
		}
		if fresh && ev.Flags&wire.EventRelayed != 0 && c.relayed.Seen(ev.ID) {
			fresh = false // relayed by several gateways
		}
		if fresh {
			s.deliver = append(s.deliver, ev.ToSync(f.Origin, f.Zone, f.Region))
		} else {
			c.c.duplicates.Add(1)
		}
		if ev.Flags&wire.EventAckWanted != 0 {
			s.seqs = append(s.seqs, ev.Seq)
		}
	}
	c.recv.mu.Unlock()

	for i := range s.deliver {
		ev := &s.deliver[i]
		if c.holdDelivery() { // while a subscription is full, StallTimeout at most
			now = time.Now() // the delay the recorder sees includes the hold
		}
		c.disp.Deliver(*ev)
		c.cfg.Recorder.DeliveryDelay(now.Sub(ev.Time))
		*ev = syncbus.Event{}
	}
	if gap {
		c.c.gaps.Add(1)
		n := c.disp.Resync(f.Origin)
		c.log.Warn("bridge: events of a node were lost on the way; subscriptions resynced", "origin", f.Origin, "subscriptions", n)
	}
	// Acks follow delivery; duplicates are acknowledged again, since the
	// first ack may be what was lost.
	if len(s.seqs) > 0 && !c.muted.Load() {
		if c.inlineAcks {
			c.acks.sendNow(f.Origin, f.Boot, reply, s.seqs)
		} else {
			c.acks.add(f.Origin, f.Boot, reply, s.seqs)
		}
	}
}

// onDigest learns a publisher's highest number: the last events of a
// burst that never arrived show as a gap here, as a later frame would
// show them. Its Start reports events the publisher failed to send (see
// sender.sendDigest): a window that begins after them never saw their
// numbers go by, and resyncs on the digest.
func (c *Core) onDigest(d *wire.Digest) {
	if d.Origin == c.name {
		return
	}
	gap := false
	c.recv.mu.Lock()
	k := originKey{d.Origin, d.Boot}
	w := c.recv.windows[k]
	switch {
	case w == nil:
		// Nothing heard of this incarnation: its events, if any, came
		// before this node listened. Start from here.
		w = &window{last: d.Seq, started: true, from: d.Seq + 1, seen: time.Now()}
		c.recv.windows[k] = w
	case d.Seq > w.last:
		// A digest has no Time: the missing events are placed only by a
		// resync still to come.
		gap = w.started && !c.recv.down
		w.last, w.started, w.seen = d.Seq, true, time.Now()
	}
	if d.Start < d.Seq && d.Start+1 < w.from {
		// Events numbered after Start, before this window's first, were
		// lost on the way (or came before this node listened: a resync
		// more rather than a silent loss). One resync covers them.
		gap = gap || !c.recv.down
		w.from = d.Start + 1
	}
	c.recv.mu.Unlock()
	if gap {
		c.c.gaps.Add(1)
		n := c.disp.Resync(d.Origin)
		c.log.Warn("bridge: the last events of a node were lost on the way; subscriptions resynced", "origin", d.Origin, "subscriptions", n)
	}
}

// onAcks counts acknowledgements of this incarnation's events; those of
// other publishers (every node reads them on Kafka) are ignored.
func (c *Core) onAcks(f *wire.Acks) {
	if f.Origin != c.name || f.Boot != c.boot {
		return
	}
	for _, a := range f.Acks {
		for _, seq := range a.Seqs {
			if c.awaits.ack(seq, a.Node) {
				c.c.acksReceived.Add(1)
			}
		}
	}
}
