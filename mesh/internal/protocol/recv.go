package protocol

import (
	"net/netip"
	"time"

	"github.com/warpmesh/warp/wire"
)

// onEvents delivers the new events of a frame, acknowledges the ones whose
// publisher waits, fans the frame out when this node is its relay, and
// grants the origin credit.
func (c *Core) onEvents(now time.Time, from netip.AddrPort, f *wire.Events) {
	if f.Origin == c.self.Name {
		if f.Boot == c.self.Boot {
			c.stats.Duplicates += uint64(len(f.Events))
		}
		return // our own events, or a previous incarnation's
	}
	k := originKey{f.Origin, f.Boot}
	w := c.window(k)
	if w.lastEvent.IsZero() || now.Sub(w.lastEvent) > c.t.Activity {
		c.active++ // recounted by tickCredit when the first active one goes quiet
		if end := now.Add(c.t.Activity + 1); end.Before(c.activeCheckAt) {
			c.activeCheckAt = end
		}
	}
	w.lastEvent = now
	if f.Flags&wire.FlagRetransmit != 0 && !w.nakSentAt.IsZero() {
		c.observeRTT(f.Origin, now.Sub(w.nakSentAt))
		w.nakSentAt = time.Time{}
	}
	seqs := c.seqScratch[:0]
	for i := range f.Events {
		ev := &f.Events[i]
		fresh := w.accept(ev.Seq, now)
		if fresh && ev.Flags&wire.EventRelayed != 0 && c.relayed.Seen(ev.ID) {
			fresh = false // relayed by several gateways
		}
		if fresh {
			c.rd.Deliveries = append(c.rd.Deliveries, ev.ToSync(f.Origin, f.Zone, f.Region))
			c.roomUsed++
		} else {
			c.stats.Duplicates++
		}
		// Every number below the window's next was delivered by this
		// incarnation or given up with a resync that covers it, and one
		// above it was just delivered, so a duplicate is acknowledged
		// again: the first ack may be the datagram that was lost.
		if ev.Flags&wire.EventAckWanted != 0 {
			seqs = append(seqs, ev.Seq)
		}
	}
	c.seqScratch = seqs
	if w.trim(now) {
		c.resync(w, f.Origin)
	}
	c.noteGap(k, w)
	if len(seqs) > 0 && !c.muted {
		m := c.send(wire.FrameAcks, TrafficData, from)
		m.Acks = wire.Acks{Origin: f.Origin, Boot: f.Boot, Acks: c.ackEntry(c.self.Name, c.self.Boot, seqs)}
		c.stats.AcksSent += uint64(len(seqs))
	}
	if f.Flags&wire.FlagRelay != 0 {
		c.fanOut(now, from, f, seqs)
	}
	c.creditFor(now, k, w, false)
}

// ackEntry returns a one-node ack list, its seqs copied, from the arenas.
func (c *Core) ackEntry(node string, boot uint64, seqs []uint64) []wire.Ack {
	start := len(c.seqArena)
	c.seqArena = append(c.seqArena, seqs...)
	c.ackArena = append(c.ackArena, wire.Ack{Node: node, Boot: boot, Seqs: c.seqArena[start:len(c.seqArena):len(c.seqArena)]})
	n := len(c.ackArena)
	return c.ackArena[n-1 : n : n]
}

// window returns the receive window of one origin incarnation.
func (c *Core) window(k originKey) *window {
	w := c.windows[k]
	if w == nil {
		w = &window{initial: c.cfg.InitialCredit}
		c.windows[k] = w
		if c.forgotten[k] {
			// We knew this incarnation, then forgot it: what it published
			// meanwhile cannot be told apart from history.
			delete(c.forgotten, k)
			c.rd.Resyncs = append(c.rd.Resyncs, k.name)
			c.stats.Resyncs++
		}
	}
	return w
}

// resync tells every subscription that events of origin may be lost,
// unless a resync already covers the loss: a resync covers every number up
// to the highest known when it was delivered, since those events were
// published before it and a cache that flushed on it reloaded what they
// invalidated. So one outage costs one flush, however many repair rounds
// it takes to learn its extent.
func (c *Core) resync(w *window, origin string) {
	if w.highest <= w.resyncedUpTo {
		return
	}
	w.resyncedUpTo = w.highest
	c.rd.Resyncs = append(c.rd.Resyncs, origin)
	c.stats.Resyncs++
}

// noteGap keeps the set of gapped windows current after w changed.
func (c *Core) noteGap(k originKey, w *window) {
	if w.hasGap() {
		if c.gapped[k] == nil {
			c.gapped[k] = w
		}
		c.wake(w.gapOpened.Add(c.t.NakDelay))
	} else {
		delete(c.gapped, k)
	}
}

// onAcks counts acknowledgements of this node's events, or, when this node
// relayed another origin's events, aggregates its zone peers' acks to
// forward them.
func (c *Core) onAcks(now time.Time, from netip.AddrPort, f *wire.Acks) {
	if f.Origin == c.self.Name {
		c.onOwnAcks(now, f)
		return
	}
	c.aggregate(now, from, f)
}

// maxRepairSeqs bounds what one repair request asks for, and what one
// answer resends.
const maxRepairSeqs = 2048

// onRepairRequest resends the events another node misses, from the ring,
// directly to it; what the ring no longer holds is reported unavailable,
// so the node resyncs instead of waiting.
func (c *Core) onRepairRequest(now time.Time, from netip.AddrPort, r *wire.RepairRequest) {
	if r.Origin != c.self.Name {
		c.drop("misdirected")
		return
	}
	c.ranges = c.ranges[:0]
	start := len(c.evArena)
	oldest := c.ring.oldest()
	budget := maxRepairSeqs
	for _, rg := range r.Ranges {
		if rg.From > rg.To || rg.From == 0 {
			continue
		}
		if r.Boot != c.self.Boot {
			c.ranges = append(c.ranges, rg) // a previous incarnation's events are gone
			continue
		}
		seq := rg.From
		if seq < oldest {
			// Everything below the ring's start is gone: say so for all of
			// it at once, beyond what was asked, so that the receiver gives
			// up (and resyncs) once rather than once per request.
			c.ranges = append(c.ranges, wire.SeqRange{From: seq, To: oldest - 1})
			seq = oldest
		}
		for ; seq <= rg.To && seq <= c.seq && budget > 0; seq++ {
			budget--
			if ev, ok := c.ring.get(seq); ok {
				c.evArena = append(c.evArena, *ev)
			} else {
				c.ranges = appendSeq(c.ranges, seq)
			}
		}
	}
	if n := len(c.evArena) - start; n > 0 {
		evs := c.evArena[start:len(c.evArena):len(c.evArena)]
		c.sendEvents(evs, wire.FlagRetransmit, c.addrs(from), nil)
		c.stats.Retransmits += uint64(n)
	}
	if len(c.ranges) > 0 {
		if len(c.ranges) > wire.MaxRanges {
			c.ranges = c.ranges[:wire.MaxRanges]
		}
		m := c.send(wire.FrameUnavailable, TrafficRepair, from)
		m.Unavailable = wire.Unavailable{Origin: c.self.Name, Boot: r.Boot, Ranges: c.rangeCopy(c.ranges)}
	}
	_ = now
}

// rangeCopy copies ranges for a message.
func (c *Core) rangeCopy(rs []wire.SeqRange) []wire.SeqRange {
	return append([]wire.SeqRange(nil), rs...)
}

// appendSeq adds seq to ranges, extending the last range when contiguous.
func appendSeq(ranges []wire.SeqRange, seq uint64) []wire.SeqRange {
	if n := len(ranges); n > 0 && ranges[n-1].To+1 == seq {
		ranges[n-1].To = seq
		return ranges
	}
	return append(ranges, wire.SeqRange{From: seq, To: seq})
}

// onUnavailable gives up the gaps the origin can no longer repair, and
// tells the subscriptions.
func (c *Core) onUnavailable(now time.Time, u *wire.Unavailable) {
	k := originKey{u.Origin, u.Boot}
	w := c.windows[k]
	if w == nil {
		return
	}
	if w.abandonRanges(u.Ranges, now) {
		c.resync(w, u.Origin)
	}
	c.noteGap(k, w)
}

// onDigest learns the highest seq an origin numbered, revealing a lost
// tail, and where it is reached: digests come straight from their origin.
func (c *Core) onDigest(now time.Time, from netip.AddrPort, d *wire.Digest) {
	if d.Origin == c.self.Name {
		return
	}
	if d.Relay {
		c.passDigestOn(d)
	}
	k := originKey{d.Origin, d.Boot}
	w := c.window(k)
	if p, known := c.view.byAddr[from]; !known || p.Name == d.Origin {
		w.addr = from // from the origin itself, not passed on by a relay
	}
	w.digest(d.Seq, d.Start, now)
	if w.trim(now) {
		c.resync(w, d.Origin)
	}
	c.noteGap(k, w)
	if d.Blocked {
		c.creditFor(now, k, w, true)
	}
}

// passDigestOn sends a digest this node relays to the other alive nodes
// of its zone.
func (c *Core) passDigestOn(d *wire.Digest) {
	v := c.view
	c.names = v.topo.AppendZonePeers(c.names[:0], c.self.Zone, c.self.Name, d.Origin)
	start := len(c.addrArena)
	for _, n := range c.names {
		if a, ok := v.addrOf(n); ok {
			c.addrArena = append(c.addrArena, a)
		}
	}
	end := len(c.addrArena)
	if end == start {
		return
	}
	m := c.send(wire.FrameDigest, TrafficRepair)
	m.To = c.addrArena[start:end:end]
	m.Digest = *d
	m.Digest.Relay = false
}

// maxForgotten bounds the incarnations remembered after their windows
// were freed.
const maxForgotten = 4096

// forget remembers that the window of k was freed.
func (c *Core) forget(k originKey) {
	if c.forgotten == nil {
		c.forgotten = make(map[originKey]bool)
	}
	if len(c.forgottenOrder) >= maxForgotten {
		delete(c.forgotten, c.forgottenOrder[0])
		c.forgottenOrder = c.forgottenOrder[1:]
	}
	c.forgotten[k] = true
	c.forgottenOrder = append(c.forgottenOrder, k)
}

// dropGoneWindows applies a membership change to the receive windows: the
// gaps of incarnations that left, failed or were replaced are given up
// (with a resync), and the windows of nodes the membership forgot are
// freed. A node the membership never listed keeps its window: it may be
// joining, and its events and digests are news of it, not loss.
func (c *Core) dropGoneWindows(now time.Time, prev *view) {
	v := c.view
	for k, w := range c.windows {
		p, known := v.nodes[k.name]
		if !known {
			if _, was := prev.nodes[k.name]; !was {
				continue
			}
			// The membership forgot the node. Free its window, but remember
			// the incarnation: if it ever speaks again, what it published
			// meanwhile cannot be told apart from history, so resync then.
			if w.abandonAll(now) {
				c.resync(w, k.name)
			}
			c.deleteWindow(k)
			c.forget(k)
			continue
		}
		if p.Boot == k.boot {
			w.listed = true
		}
		if !v.isGone(k.name, k.boot) {
			continue
		}
		if p.Boot != k.boot && !w.listed {
			// An incarnation the membership has not listed yet is the
			// newer one, not the older: a restarted node speaks before
			// gossip tells of its restart. Freeing its window would take
			// the retransmissions of what it delivered for new events.
			// Only when the membership never lists it is it given up.
			if w.unlistedSince.IsZero() {
				w.unlistedSince = now
			}
			if now.Sub(w.unlistedSince) < unknownHoldRounds*c.t.NakBackoffMax {
				continue
			}
		}
		if w.abandonAll(now) {
			c.resync(w, k.name)
		}
		delete(c.gapped, k)
		delete(c.owed, k)
		if p.Boot != k.boot {
			c.deleteWindow(k) // replaced by a new incarnation: it never sends again
		}
	}
}

// deleteWindow frees the window of k.
func (c *Core) deleteWindow(k originKey) {
	c.activeValid = false // it may have counted as active
	delete(c.windows, k)
	delete(c.gapped, k)
	delete(c.owed, k)
}
