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
	// epoch is the loss epoch this window last matched: after a reconnect
	// or a slow-consumer drop, which already resynced everything, the first
	// gap of each window is that loss and resyncs nothing more.
	epoch uint64
	seen  time.Time
}

// accept records seq: fresh is false for a duplicate, gap true when numbers
// were skipped.
func (w *window) accept(seq uint64) (fresh, gap bool) {
	switch {
	case !w.started:
		w.started, w.last = true, seq
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

// recvState is the receiving side's shared state.
type recvState struct {
	mu      sync.Mutex
	windows map[originKey]*window
	epoch   uint64
}

func (r *recvState) init() { r.windows = make(map[originKey]*window) }

// bumpEpoch starts a new loss epoch: a loss that the caller reports (or
// will report, for a disconnection) with one resync of everything.
func (r *recvState) bumpEpoch() {
	r.mu.Lock()
	r.epoch++
	r.mu.Unlock()
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
		w = &window{epoch: c.recv.epoch}
		c.recv.windows[k] = w
	}
	w.seen = now
	for i := range f.Events {
		ev := &f.Events[i]
		fresh, skipped := w.accept(ev.Seq)
		if skipped {
			if w.epoch < c.recv.epoch {
				w.epoch = c.recv.epoch // this loss was resynced already
			} else {
				gap = true
			}
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
// show them.
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
		c.recv.windows[k] = &window{last: d.Seq, started: true, epoch: c.recv.epoch, seen: time.Now()}
	case d.Seq > w.last:
		if !w.started || w.epoch < c.recv.epoch {
			w.epoch = c.recv.epoch
		} else {
			gap = true
		}
		w.last, w.started, w.seen = d.Seq, true, time.Now()
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
