package mesh

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/wire"
)

// The event loop's periods with and without pending repairs,
// retransmissions or digests.
const (
	tickBusy = 5 * time.Millisecond
	tickIdle = 100 * time.Millisecond
)

// originKey names one incarnation of a node that numbers events.
type originKey struct {
	name string
	boot uint64
}

// loopState is owned by the event loop goroutine.
type loopState struct {
	windows map[originKey]*recvWindow
	gapped  map[originKey]*recvWindow // the windows with an open gap
	// forgotten remembers incarnations whose windows were freed once the
	// membership forgot them (bounded, oldest first out).
	forgotten      map[originKey]bool
	forgottenOrder []originKey
	agg            aggregator

	// Scratch space reused across datagrams.
	body    []byte
	out     []byte
	ob      *outbox
	events  wire.Events
	acks    wire.Acks
	repair  wire.RepairRequest
	unavail wire.Unavailable
	digest  wire.Digest
	ackSeqs []uint64
	ranges  []wire.SeqRange
	peers   []string
	addrs   []netip.AddrPort
	resend  []retransmission

	viewVersion uint64
	aliveBefore map[string]uint64 // name -> boot of the alive nodes at the last view
	digestSeq   uint64            // highest seq announced by the last digest round
	digestRound int               // digests sent since the last send
}

// loop is the event loop: it receives datagrams and runs the timers of
// repair, retransmission, digests and relay ack aggregation. It owns the
// receive windows and the aggregator, so they need no locks.
func (b *MeshBus) loop() {
	s := &loopState{
		windows: make(map[originKey]*recvWindow),
		gapped:  make(map[originKey]*recvWindow),
		body:    make([]byte, 0, wire.MaxDatagramSize),
		out:     make([]byte, 0, wire.MaxDatagramSize),
		ob:      b.loopOutbox,
	}
	s.agg.init()
	s.viewVersion = b.view.Load().version
	s.aliveBefore = aliveSet(b.view.Load())

	in := b.tr.Datagrams()
	tick := time.NewTimer(tickIdle)
	defer tick.Stop()
	busy := false
	hurry := func() {
		if !busy {
			busy = true
			tick.Reset(tickBusy)
		}
	}
	for {
		select {
		case <-b.done:
			b.flushAggregated(s, true)
			return
		case dg := <-in:
			b.receive(s, dg)
			if len(s.gapped) > 0 {
				hurry()
			}
		case <-b.kick:
			hurry()
		case <-s.agg.timer():
			b.flushAggregated(s, false)
		case <-tick.C:
			busy = b.onTick(s, time.Now())
			b.loopIdle.Store(!busy)
			if busy {
				tick.Reset(tickBusy)
			} else {
				tick.Reset(tickIdle)
			}
		}
	}
}

// kickLoop makes an idle event loop tick fast again: a publish schedules
// digests, an awaiting publish may need retransmissions.
func (b *MeshBus) kickLoop() {
	if b.loopIdle.Load() && b.loopIdle.CompareAndSwap(true, false) {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// receive opens, decodes and handles one datagram. Bad input is counted by
// reason and dropped; nothing here can fail the loop.
func (b *MeshBus) receive(s *loopState, dg *membership.Datagram) {
	from, n := dg.From, len(dg.Data)
	v := b.mustView() // current: a frame may come from a node that just joined
	body, _, err := b.opener.Open(s.body[:0], dg.Data)
	dg.Release()
	if err != nil {
		b.refuse(wire.Reason(err), from, err)
		return
	}
	s.body = body[:0]
	typ, err := wire.PeekType(body)
	if err != nil {
		b.refuse(wire.Reason(err), from, err)
		return
	}
	switch typ {
	case wire.FrameEvents:
		if err = wire.DecodeEvents(body, &s.events); err == nil {
			if s.events.Flags&wire.FlagRetransmit == 0 {
				b.countReceived(v, from, n)
			}
			b.onEvents(s, v, from, &s.events)
		}
	case wire.FrameAcks:
		if err = wire.DecodeAcks(body, &s.acks); err == nil {
			b.countReceived(v, from, n)
			b.onAcks(s, v, &s.acks)
		}
	case wire.FrameRepairRequest:
		if err = wire.DecodeRepairRequest(body, &s.repair); err == nil {
			b.onRepairRequest(s, v, from, &s.repair)
		}
	case wire.FrameUnavailable:
		if err = wire.DecodeUnavailable(body, &s.unavail); err == nil {
			b.onUnavailable(s, &s.unavail)
		}
	case wire.FrameDigest:
		if err = wire.DecodeDigest(body, &s.digest); err == nil {
			b.onDigest(s, &s.digest)
		}
	default:
		b.refuse("unexpected", from, fmt.Errorf("mesh: unexpected %v frame", typ))
	}
	if err != nil {
		b.refuse(wire.Reason(err), from, err)
	}
}

// refuse counts a datagram dropped for reason and logs it, at most once a
// second: a node with a wrong key or label, or under attack, says so
// without letting a flood of bad datagrams flood its log.
func (b *MeshBus) refuse(reason string, from netip.AddrPort, err error) {
	b.c.drop(reason)
	now := nanotime()
	last := b.lastRefusalLog.Load()
	if now-last < int64(time.Second) || !b.lastRefusalLog.CompareAndSwap(last, now) {
		return
	}
	b.log.Warn("mesh: dropped a datagram (at most one such message a second)",
		"reason", reason, "from", from, "err", err, "drops", b.c.dropsSnapshot())
}

// countReceived accounts a datagram of the data path (events or acks) by
// the zone of its sender.
func (b *MeshBus) countReceived(v *view, from netip.AddrPort, n int) {
	if p, ok := v.byAddr[from]; ok && p.zone != b.zone {
		b.c.receivedRemote.add(n)
	} else {
		b.c.receivedLocal.add(n)
	}
}

// noteGap keeps the set of gapped windows current after w changed.
func (s *loopState) noteGap(k originKey, w *recvWindow) {
	if w.hasGap() {
		s.gapped[k] = w
	} else {
		delete(s.gapped, k)
	}
}

// onEvents delivers the new events of a frame, acknowledges the ones whose
// publisher waits, and fans the frame out when this node is its relay.
func (b *MeshBus) onEvents(s *loopState, v *view, from netip.AddrPort, f *wire.Events) {
	if f.Origin == b.name {
		if f.Boot == b.boot {
			b.c.duplicates.Add(uint64(len(f.Events)))
		}
		return // our own events, or a previous incarnation's
	}
	k := originKey{f.Origin, f.Boot}
	w := b.window(s, f.Origin, f.Boot)
	now := nanotime()
	s.ackSeqs = s.ackSeqs[:0]
	for i := range f.Events {
		ev := &f.Events[i]
		fresh := w.accept(ev.Seq, now)
		if fresh && ev.Flags&wire.EventRelayed != 0 && b.relayed.Seen(ev.ID) {
			fresh = false // relayed by several gateways
		}
		if fresh {
			b.disp.Deliver(ev.ToSync(f.Origin, f.Zone, f.Region))
		} else {
			b.c.duplicates.Add(1)
		}
		// Duplicates are acknowledged again: the first ack may be the
		// datagram that was lost.
		if ev.Flags&wire.EventAckWanted != 0 {
			s.ackSeqs = append(s.ackSeqs, ev.Seq)
		}
	}
	if w.trim(now) {
		b.resync(w, f.Origin)
	}
	s.noteGap(k, w)
	if len(s.ackSeqs) > 0 && !b.muted.Load() {
		b.sendAcks(s, v, from, f.Origin, f.Boot, s.ackSeqs)
	}
	if f.Flags&wire.FlagRelay != 0 {
		b.fanOut(s, v, from, f)
	}
}

// sendAcks acknowledges seqs of origin's incarnation boot to the node the
// events came from (the publisher, or the relay that forwarded them).
func (b *MeshBus) sendAcks(s *loopState, v *view, to netip.AddrPort, origin string, boot uint64, seqs []uint64) {
	f := wire.Acks{Origin: origin, Boot: boot, Acks: []wire.Ack{{Node: b.name, Seqs: seqs, Boot: b.boot}}}
	body, err := wire.AppendAcks(s.out[:0], &f, false)
	if err != nil {
		b.log.Error("mesh: encoding acks", "err", err)
		return
	}
	s.out = body[:0]
	b.sendTo(v, classData, body, s.ob, to)
	b.c.acksSent.Add(uint64(len(seqs)))
}

// onAcks counts acknowledgements of our own events, or, when this node
// relayed another origin's events, aggregates its zone peers' acks to
// forward them.
func (b *MeshBus) onAcks(s *loopState, v *view, f *wire.Acks) {
	if f.Origin != b.name {
		b.aggregate(s, v, f)
		return
	}
	if f.Boot != b.boot {
		b.c.drop("stale-ack")
		return
	}
	for _, a := range f.Acks {
		for _, seq := range a.Seqs {
			if b.awaits.ack(seq, a.Node) {
				b.c.acksReceived.Add(1)
			}
		}
	}
}

// onTick runs the timers. It reports whether work is pending, so the loop
// ticks fast only when it has to.
func (b *MeshBus) onTick(s *loopState, now time.Time) bool {
	v := b.mustView()
	if v.version != s.viewVersion {
		b.onViewChange(s, v)
	}
	b.repairGaps(s, v, now.UnixNano())
	s.resend = b.awaits.due(now, v, s.resend[:0])
	for i := range s.resend {
		b.retransmit(s, v, &s.resend[i])
		s.resend[i] = retransmission{}
	}
	digestPending := b.sendDigests(s, v, now)
	return len(s.gapped) > 0 || b.awaits.len() > 0 || digestPending
}
