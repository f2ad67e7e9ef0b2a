package mesh

// Repair (NAKACK): receive windows, repair requests and their answers,
// digests, retransmission of awaited events, and the resyncs owed when a
// loss cannot be repaired. All of it runs on the event loop.

import (
	"net/netip"
	"time"

	"github.com/warpmesh/warp/wire"
)

// Timings of the repair protocol (NAKACK).
const (
	// nakDelay is how long a gap may stay open before it is reported:
	// datagrams on one path rarely reorder, but events of one origin reach
	// a node by two paths (direct and through a relay, or repaired).
	nakDelay = 5 * time.Millisecond
	// nakBackoff is the first wait between repair requests for one gap;
	// it doubles up to nakBackoffMax. After maxNaks requests the gap is
	// given up and the subscriptions are resynced.
	nakBackoff    = 10 * time.Millisecond
	nakBackoffMax = 200 * time.Millisecond
	maxNaks       = 8
	// maxRepairSeqs bounds what one repair request asks for, and what one
	// answer resends.
	maxRepairSeqs = 2048
)

// digestDelays are the idle times after the last sent event at which the
// node announces its highest sequence number to every other node, so a
// lost last event becomes a visible gap.
var digestDelays = [...]time.Duration{15 * time.Millisecond, 150 * time.Millisecond, time.Second}

// window returns the receive window of one origin incarnation.
func (b *MeshBus) window(s *loopState, name string, boot uint64) *recvWindow {
	k := originKey{name, boot}
	w := s.windows[k]
	if w == nil {
		w = &recvWindow{}
		s.windows[k] = w
		if s.forgotten[k] {
			// We knew this incarnation, then forgot it: we cannot know what
			// it published while it was away.
			delete(s.forgotten, k)
			b.disp.Resync(name)
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
func (b *MeshBus) resync(w *recvWindow, origin string) {
	if w.highest <= w.resyncedUpTo {
		return
	}
	w.resyncedUpTo = w.highest
	b.disp.Resync(origin)
}

// maxForgotten bounds the incarnations remembered after their windows
// were freed.
const maxForgotten = 4096

// forget remembers that the window of k was freed.
func (s *loopState) forget(k originKey) {
	if s.forgotten == nil {
		s.forgotten = make(map[originKey]bool)
	}
	if len(s.forgottenOrder) >= maxForgotten {
		delete(s.forgotten, s.forgottenOrder[0])
		s.forgottenOrder = s.forgottenOrder[1:]
	}
	s.forgotten[k] = true
	s.forgottenOrder = append(s.forgottenOrder, k)
}

// onRepairRequest resends the events another node misses, from the send
// buffer, directly to it; what the buffer no longer holds is reported
// unavailable, so the node resyncs instead of waiting.
func (b *MeshBus) onRepairRequest(s *loopState, v *view, from netip.AddrPort, r *wire.RepairRequest) {
	if r.Origin != b.name {
		b.c.drop("misdirected")
		return
	}
	s.ranges = s.ranges[:0]
	var evs []wire.Event
	var ev wire.Event
	oldest := b.sendBuf.oldest()
	budget := maxRepairSeqs
	for _, rg := range r.Ranges {
		if rg.From > rg.To {
			continue
		}
		if r.Boot != b.boot {
			s.ranges = append(s.ranges, rg) // a previous incarnation's events are gone
			continue
		}
		seq := rg.From
		if seq < oldest {
			// Everything below the ring's start is gone: say so for all of
			// it at once, beyond what was asked, so that the receiver gives
			// up (and resyncs) once rather than once per request.
			s.ranges = append(s.ranges, wire.SeqRange{From: seq, To: oldest - 1})
			seq = oldest
		}
		for ; seq <= rg.To && budget > 0; seq++ {
			budget--
			if b.sendBuf.get(seq, &ev) {
				evs = append(evs, ev)
			} else {
				s.ranges = appendSeq(s.ranges, seq)
			}
			if seq == ^uint64(0) {
				break
			}
		}
	}
	if len(evs) > 0 {
		b.sendFrames(v, evs, wire.FlagRetransmit, []netip.AddrPort{from}, s.ob)
		b.c.retransmits.Add(uint64(len(evs)))
	}
	if len(s.ranges) > 0 {
		if len(s.ranges) > wire.MaxRanges {
			s.ranges = s.ranges[:wire.MaxRanges]
		}
		u := wire.Unavailable{Origin: b.name, Boot: r.Boot, Ranges: s.ranges}
		body, err := wire.AppendUnavailable(s.out[:0], &u, false)
		if err == nil {
			s.out = body[:0]
			b.sendTo(v, classRepair, body, s.ob, from)
		}
	}
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
func (b *MeshBus) onUnavailable(s *loopState, u *wire.Unavailable) {
	k := originKey{u.Origin, u.Boot}
	w := s.windows[k]
	if w == nil {
		return
	}
	if w.abandonRanges(u.Ranges, nanotime()) {
		b.resync(w, u.Origin)
	}
	s.noteGap(k, w)
}

// onDigest learns the highest seq an origin numbered, revealing a lost tail.
func (b *MeshBus) onDigest(s *loopState, d *wire.Digest) {
	if d.Origin == b.name {
		return
	}
	k := originKey{d.Origin, d.Boot}
	w := b.window(s, d.Origin, d.Boot)
	now := nanotime()
	w.digest(d.Seq, d.Start, now)
	if w.trim(now) {
		b.resync(w, d.Origin)
	}
	s.noteGap(k, w)
}

// sendDigest tells p the highest number this node assigned, and the number
// after which p receives everything (when p joined this node's view).
func (b *MeshBus) sendDigest(s *loopState, v *view, p peer, seq uint64) {
	d := wire.Digest{Origin: b.name, Boot: b.boot, Seq: seq, Start: min(v.joinSeq[p.name], seq)}
	body, err := wire.AppendDigest(s.out[:0], &d, false)
	if err != nil {
		return
	}
	s.out = body[:0]
	b.sendTo(v, classRepair, body, s.ob, p.addr)
}

// onViewChange applies a membership change: awaits learn who is alive,
// windows of nodes gone for good are dropped (after resyncing their gaps),
// and nodes that came (back) get a digest so that what they missed while
// away becomes visible to them.
func (b *MeshBus) onViewChange(s *loopState, v *view) {
	s.viewVersion = v.version
	b.awaits.setTopology(v.topo)
	now := nanotime()
	for k, w := range s.windows {
		p, known := v.nodes[k.name]
		if !known {
			// The membership forgot the node. Free its window, but remember
			// the incarnation: if it ever speaks again, what it published
			// meanwhile cannot be told apart from history, so resync then.
			if w.abandonAll(now) {
				b.resync(w, k.name)
			}
			delete(s.gapped, k)
			delete(s.windows, k)
			s.forget(k)
			continue
		}
		if !v.isGone(k.name, k.boot) {
			continue
		}
		if w.abandonAll(now) {
			b.resync(w, k.name)
		}
		delete(s.gapped, k)
		if p.boot != k.boot {
			delete(s.windows, k) // replaced by a new incarnation: it never sends again
		}
	}
	alive := aliveSet(v)
	// Tell newcomers where this node's numbering stood when they joined:
	// their window for us starts there, so an event they miss from then on
	// is a gap they repair, not history from before them.
	seq := b.num.watermark()
	for _, p := range v.alive {
		if boot, was := s.aliveBefore[p.name]; !was || boot != p.boot {
			b.sendDigest(s, v, p, seq)
		}
	}
	s.aliveBefore = alive
}

func aliveSet(v *view) map[string]uint64 {
	m := make(map[string]uint64, len(v.alive))
	for _, p := range v.alive {
		m[p.name] = p.boot
	}
	return m
}

// repairGaps sends repair requests for the gaps that are due, and gives up
// (with a resync) those that stayed open through every request.
func (b *MeshBus) repairGaps(s *loopState, v *view, now int64) {
	for k, w := range s.gapped {
		if !w.hasGap() {
			delete(s.gapped, k)
			continue
		}
		if now-w.gapOpened < int64(nakDelay) || now < w.nextNak {
			continue
		}
		addr, ok := v.addrOf(k.name)
		if !ok || w.naksSent >= maxNaks {
			if w.abandonAll(now) {
				b.resync(w, k.name)
			}
			delete(s.gapped, k)
			continue
		}
		s.ranges = w.missing(s.ranges[:0], wire.MaxRanges, maxRepairSeqs)
		r := wire.RepairRequest{Origin: k.name, Boot: k.boot, Ranges: s.ranges}
		body, err := wire.AppendRepairRequest(s.out[:0], &r, false)
		if err != nil {
			continue
		}
		s.out = body[:0]
		b.sendTo(v, classRepair, body, s.ob, addr)
		b.c.repairRequests.Add(1)
		w.nextNak = now + int64(min(nakBackoff<<w.naksSent, nakBackoffMax))
		w.naksSent++
	}
}

// retransmit resends one awaited event to the nodes that have not acked,
// through new relays where the old ones stayed silent.
func (b *MeshBus) retransmit(s *loopState, v *view, r *retransmission) {
	s.addrs = s.addrs[:0]
	for _, n := range r.direct {
		if a, ok := v.addrOf(n); ok {
			s.addrs = append(s.addrs, a)
		}
	}
	var relays []netip.AddrPort
	for _, n := range r.relays {
		if a, ok := v.addrOf(n); ok {
			relays = append(relays, a)
		}
	}
	evs := []wire.Event{r.ev}
	b.sendEvents(v, evs, wire.FlagRetransmit, s.addrs, relays, s.ob)
	b.c.retransmits.Add(uint64(len(s.addrs) + len(relays)))
}

// sendDigests announces this node's highest seq to every other node after
// it stops sending, on the digestDelays schedule. It reports whether a
// digest is still due.
func (b *MeshBus) sendDigests(s *loopState, v *view, now time.Time) bool {
	seq := b.num.watermark()
	if seq == 0 {
		return false
	}
	if seq != s.digestSeq {
		s.digestSeq, s.digestRound = seq, 0
	}
	if s.digestRound >= len(digestDelays) {
		return false
	}
	idle := now.Sub(time.Unix(0, b.lastSend.Load()))
	if idle < digestDelays[s.digestRound] {
		return true
	}
	s.digestRound++
	for _, p := range v.alive {
		b.sendDigest(s, v, p, seq)
	}
	return s.digestRound < len(digestDelays)
}
