package protocol

import (
	"math"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// Flow control, in the manner of TCP's receive window and JGroups' credit
// protocols. Each receiver grants each origin credit: a number up to which
// the origin may send it events. The grant is what the receiver has
// received plus its share of the room its subscriptions have left — room
// that frees up only as the subscribers read — so a publisher never runs
// further ahead of a receiver than that receiver's subscriptions can hold.
// The publisher sends no event beyond the smallest credit of its alive
// receivers; what it cannot send waits (Pending), and the caller's publish
// calls wait once too much waits.
//
// A receiver that stays without credit — a subscriber that stopped
// reading, a node that stopped answering — holds the others back for
// Timings.StallTimeout at most (not at all once the membership suspects
// it): the publisher then goes on without it, its subscriptions overflow
// into one resync each, and it holds the publisher back again only once
// its credit shows it caught up.

// flowState is the publisher's side: the credit of every alive receiver.
type flowState struct {
	recv       map[string]*receiverFlow
	minLimit   uint64 // the smallest limit of the receivers not released
	none       bool   // no receiver holds the publisher back
	dirty      bool   // minLimit must be recomputed
	stallStart time.Time
	askedAt    time.Time // when the blocking receivers were last asked for credit
}

type receiverFlow struct {
	boot     uint64
	limit    uint64 // the highest number it may be sent
	released bool   // it no longer holds the publisher back
	// credited is set once it granted credit: it has a window of this
	// incarnation.
	credited bool
}

func (f *flowState) init() { f.recv = make(map[string]*receiverFlow) }

// setView follows the alive receivers. A new receiver (or incarnation)
// starts with the initial credit; a suspect one is released at once.
func (f *flowState) setView(c *Core, v *view) {
	alive := make(map[string]bool, len(v.alive))
	for _, p := range v.alive {
		alive[p.Name] = true
		r := f.recv[p.Name]
		if r == nil || r.boot != p.Boot {
			r = &receiverFlow{boot: p.Boot, limit: c.seq + uint64(c.cfg.InitialCredit)}
			f.recv[p.Name] = r
		}
		if p.State == syncbus.MemberSuspect && !r.released {
			r.released = true
			c.stats.FlowReleased++
		}
	}
	for name := range f.recv {
		if !alive[name] {
			delete(f.recv, name)
		}
	}
	f.dirty = true
}

// allowance returns how many more events may be numbered now.
func (f *flowState) allowance(c *Core) int {
	if f.dirty {
		f.dirty, f.none = false, true
		f.minLimit = math.MaxUint64
		for _, r := range f.recv {
			if !r.released && r.limit < f.minLimit {
				f.minLimit, f.none = r.limit, false
			}
		}
	}
	if f.none {
		return math.MaxInt
	}
	if f.minLimit <= c.seq {
		return 0
	}
	return int(min(f.minLimit-c.seq, math.MaxInt32))
}

// stall notes that events wait for credit and none can be sent: the
// start of a time without progress, which StallTimeout bounds. The
// blocking receivers are asked for credit after CreditPoll (a grant on
// its way usually comes first), then every CreditKeepalive.
func (f *flowState) stall(c *Core, now time.Time) {
	if f.stallStart.IsZero() {
		f.stallStart = now
		f.askedAt = now.Add(c.t.CreditPoll - c.t.CreditKeepalive)
		c.stats.FlowStalls++
	}
	c.wake(f.stallStart.Add(c.t.StallTimeout))
	c.wake(f.askedAt.Add(c.t.CreditKeepalive))
}

// endStall notes that nothing waits for credit any more.
func (f *flowState) endStall(c *Core, now time.Time) {
	if f.stallStart.IsZero() {
		return
	}
	d := now.Sub(f.stallStart)
	f.stallStart = time.Time{}
	c.stats.FlowStallTime += d
	c.rd.FlowStalls = append(c.rd.FlowStalls, d)
}

// tick asks the receivers that block a stall for their credit — their
// last grant may have been lost — and releases the ones that held it for
// StallTimeout.
func (f *flowState) tick(c *Core, now time.Time) {
	if f.stallStart.IsZero() {
		return
	}
	if ask := f.askedAt.Add(c.t.CreditKeepalive); !now.Before(ask) {
		f.askedAt = now
		for name, r := range f.recv {
			if !r.released && r.limit <= c.seq {
				if p, ok := c.view.nodes[name]; ok && p.Boot == r.boot {
					c.sendDigest(p, c.seq, true)
				}
			}
		}
		c.wake(now.Add(c.t.CreditKeepalive))
	} else {
		c.wake(ask)
	}
	if now.Before(f.stallStart.Add(c.t.StallTimeout)) {
		return
	}
	for _, r := range f.recv {
		if !r.released && r.limit <= c.seq {
			r.released = true
			c.stats.FlowReleased++
			f.dirty = true
		}
	}
}

// onCredit applies a receiver's grant.
func (c *Core) onCredit(now time.Time, cr *wire.Credit) {
	if cr.Origin != c.self.Name || cr.Boot != c.self.Boot {
		c.drop("stale-credit")
		return
	}
	r := c.flow.recv[cr.Node]
	if r == nil || r.boot != cr.NodeBoot {
		c.drop("stale-credit")
		return
	}
	// A receiver never grants more than a window beyond what it received,
	// which is at most what was sent.
	r.credited = true
	limit := min(cr.Limit, c.seq+uint64(c.cfg.Window))
	if limit > r.limit {
		r.limit = limit
		c.flow.dirty = true
	}
	if r.released && r.limit > c.seq {
		r.released = false // it caught up
		c.flow.dirty = true
	}
	c.flush(now)
}

// share is the credit this node grants one active origin now: an equal
// part of its subscriptions' room, at most a window.
func (c *Core) share() int {
	free := max(c.room-c.roomUsed, 0)
	return min(free/max(c.active, 1), c.cfg.Window)
}

// creditFor grants origin k more credit when it has used much of what it
// was granted, or when it may be waiting for credit and room came back.
func (c *Core) creditFor(now time.Time, k originKey, w *window, asked bool) {
	addr, ok := c.view.addrOf(k.name)
	if !ok {
		addr = w.addr
	}
	if !addr.IsValid() || w.next == 0 {
		return
	}
	win := uint64(c.cfg.Window)
	// The room must hold what the origin may still send and what we will
	// get repaired: events we miss were granted before and will take
	// their slots when they come.
	got := max(w.received, w.next-1)
	share := c.share()
	free := uint64(share)
	if missing := w.missingCount(); missing < free {
		free -= missing
	} else {
		free = 0
	}
	limit := got + free
	// Never let the origin run so far beyond our oldest gap that its
	// repair ring forgets it.
	limit = min(limit, w.next-1+maxSpan/2)
	limit = max(limit, w.granted)
	waiting := got+win/8 >= w.granted
	var send bool
	switch {
	case limit >= w.granted+win/4:
		send = true
	case waiting && limit > w.granted && now.Sub(w.grantedAt) >= c.t.CreditPoll:
		send = true
	case waiting && now.Sub(w.grantedAt) >= c.t.CreditKeepalive:
		send = true // the last credit may have been lost
	case asked:
		send = true // the origin says it waits: our last grant was lost
	case waiting && limit > w.granted:
		c.owedRecheck = true // to grant once CreditPoll has passed
	}
	if send {
		m := c.send(wire.FrameCredit, TrafficControl, addr)
		m.Credit = wire.Credit{Origin: k.name, Boot: k.boot, Node: c.self.Name, NodeBoot: c.self.Boot, Limit: limit}
		w.granted, w.grantedAt = limit, now
		c.stats.CreditsSent++
	}
	if got+win/8 >= w.granted && now.Sub(w.lastEvent) < c.t.Activity {
		c.owed[k] = w
		c.wake(now.Add(c.t.CreditPoll))
		if share != c.owedShare {
			c.owedRecheck = true // the others were looked at with another share
		}
		due := w.grantedAt.Add(c.t.CreditKeepalive)
		if expiry := w.lastEvent.Add(c.t.Activity); expiry.Before(due) {
			due = expiry
		}
		if c.owedNextAt.IsZero() || due.Before(c.owedNextAt) {
			c.owedNextAt = due
		}
	} else {
		delete(c.owed, k)
	}
}

// tickCredit recounts the active origins, and looks again at the origins
// that may be waiting for our credit.
//
// It runs every CreditPoll while any origin is owed, and a node of a large
// cluster knows a window per origin: walking them all each time took half
// the CPU of a 1000-node simulation. So it does only what can have
// changed: the count of active origins when the first of them goes quiet
// (one that becomes active counts at once, in receive), and the owed
// origins when the share changed (room came back), a grant waits only for
// CreditPoll to pass, or a keepalive or an expiry is due. Events of an
// origin look at its credit as they arrive.
func (c *Core) tickCredit(now time.Time) {
	if !c.activeValid || !now.Before(c.activeCheckAt) {
		active, next := 0, time.Time{}
		for _, w := range c.windows {
			if !w.lastEvent.IsZero() && now.Sub(w.lastEvent) <= c.t.Activity {
				active++
				if end := w.lastEvent.Add(c.t.Activity + 1); next.IsZero() || end.Before(next) {
					next = end
				}
			}
		}
		if next.IsZero() {
			next = now.Add(365 * 24 * time.Hour) // none active: until one is
		}
		c.active, c.activeCheckAt, c.activeValid = active, next, true
	}
	if len(c.owed) == 0 {
		return
	}
	share := c.share()
	if share == c.owedShare && !c.owedRecheck && now.Before(c.owedNextAt) {
		c.wake(now.Add(c.t.CreditPoll)) // to see the room come back
		return
	}
	c.owedShare, c.owedRecheck, c.owedNextAt = share, false, time.Time{}
	for k, w := range c.owed {
		c.creditFor(now, k, w, false)
	}
}
