package mesh

import (
	"net/netip"
	"slices"
	"time"

	"github.com/warpmesh/warp/wire"
)

// relayAckWindow is how long a relay holds its zone peers' acks to send
// them to the publisher in one datagram. It flushes earlier as soon as every
// peer it forwarded to has acked, so a slow or dead peer delays the others'
// acks by this window at most.
const relayAckWindow = 2 * time.Millisecond

// aggregator collects, on a relay, the acks of its zone peers for events
// of other origins. It is owned by the event loop.
type aggregator struct {
	pending map[originKey]*aggEntry
	t       *time.Timer
	armedAt time.Time // the deadline the timer is armed for, zero if not
}

// aggEntry is what a relay holds for one origin incarnation.
type aggEntry struct {
	to       netip.AddrPort      // the origin
	acks     map[string][]uint64 // node -> seqs to forward
	boots    map[string]uint64   // node -> the incarnation that acked
	waiting  map[uint64]int      // seq -> peer acks still expected
	deadline time.Time
}

func (g *aggregator) init() {
	g.pending = make(map[originKey]*aggEntry)
	g.t = time.NewTimer(time.Hour)
	g.t.Stop()
}

// timer returns the channel that fires at the earliest deadline, or nil
// when nothing waits (a nil channel never fires in a select).
func (g *aggregator) timer() <-chan time.Time {
	if g.armedAt.IsZero() {
		return nil
	}
	return g.t.C
}

// arm makes sure the timer fires no later than deadline.
func (g *aggregator) arm(deadline time.Time) {
	if !g.armedAt.IsZero() && !deadline.Before(g.armedAt) {
		return
	}
	g.armedAt = deadline
	g.t.Reset(time.Until(deadline))
}

// fanOut forwards a frame this node relays to the other nodes of its zone,
// and prepares to aggregate their acks for the events whose publisher waits.
func (b *MeshBus) fanOut(s *loopState, v *view, from netip.AddrPort, f *wire.Events) {
	s.peers = v.topo.AppendZonePeers(s.peers[:0], b.zone, b.name, f.Origin)
	s.addrs = s.addrs[:0]
	for _, n := range s.peers {
		if a, ok := v.addrOf(n); ok {
			s.addrs = append(s.addrs, a)
		}
	}
	if len(s.addrs) == 0 {
		return
	}
	f.Flags &^= wire.FlagRelay
	body, err := wire.AppendEvents(s.out[:0], f, true)
	if err != nil {
		b.c.drop(wire.Reason(err))
		return
	}
	s.out = body[:0]
	b.sendTo(v, classData, body, s.ob, s.addrs...)
	b.c.relayed.Add(uint64(len(f.Events)))
	if len(s.ackSeqs) == 0 {
		return
	}
	k := originKey{f.Origin, f.Boot}
	e := s.agg.pending[k]
	if e == nil {
		e = &aggEntry{to: from, acks: make(map[string][]uint64), boots: make(map[string]uint64), waiting: make(map[uint64]int)}
		s.agg.pending[k] = e
	}
	for _, seq := range s.ackSeqs {
		e.waiting[seq] = len(s.addrs)
	}
	if e.deadline.IsZero() {
		e.deadline = time.Now().Add(relayAckWindow)
		s.agg.arm(e.deadline)
	}
}

// aggregate records zone peers' acks for another origin's events; they are
// forwarded when every expected ack is in, or at the entry's deadline. Acks
// that arrive after their entry was flushed are forwarded at once.
func (b *MeshBus) aggregate(s *loopState, v *view, f *wire.Acks) {
	k := originKey{f.Origin, f.Boot}
	e := s.agg.pending[k]
	if e == nil {
		to, ok := v.addrOf(f.Origin)
		if !ok {
			b.c.drop("ack-for-unknown")
			return
		}
		body, err := wire.AppendAcks(s.out[:0], f, false)
		if err != nil {
			return
		}
		s.out = body[:0]
		b.sendTo(v, classData, body, s.ob, to)
		return
	}
	for _, a := range f.Acks {
		e.acks[a.Node] = append(e.acks[a.Node], a.Seqs...)
		e.boots[a.Node] = a.Boot
		for _, seq := range a.Seqs {
			if n, ok := e.waiting[seq]; ok {
				if n <= 1 {
					delete(e.waiting, seq)
				} else {
					e.waiting[seq] = n - 1
				}
			}
		}
	}
	if len(e.waiting) == 0 {
		b.flushEntry(s, v, k, e)
	}
}

// flushAggregated forwards the entries whose deadline passed (all of them
// when closing) and re-arms the timer for the next deadline.
func (b *MeshBus) flushAggregated(s *loopState, all bool) {
	v := b.mustView()
	now := time.Now()
	s.agg.armedAt = time.Time{}
	var next time.Time
	for k, e := range s.agg.pending {
		if all || !now.Before(e.deadline) {
			b.flushEntry(s, v, k, e)
			continue
		}
		if next.IsZero() || e.deadline.Before(next) {
			next = e.deadline
		}
	}
	if !next.IsZero() && !all {
		s.agg.arm(next)
	}
}

// flushEntry sends the acks an entry holds in one datagram (more only past
// wire's limits) and forgets the entry.
func (b *MeshBus) flushEntry(s *loopState, v *view, k originKey, e *aggEntry) {
	delete(s.agg.pending, k)
	if len(e.acks) == 0 {
		return
	}
	f := wire.Acks{Origin: k.name, Boot: k.boot}
	nodes := make([]string, 0, len(e.acks))
	for n := range e.acks {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	total := 0
	send := func() {
		body, err := wire.AppendAcks(s.out[:0], &f, false)
		if err != nil {
			b.log.Error("mesh: encoding aggregated acks", "err", err)
			return
		}
		s.out = body[:0]
		b.sendTo(v, classData, body, s.ob, e.to)
		f.Acks, total = f.Acks[:0], 0
	}
	for _, n := range nodes {
		seqs := e.acks[n]
		if len(f.Acks) == wire.MaxAckNodes || total+len(seqs) > wire.MaxAckSeqs || total+len(seqs) > 128 {
			if len(f.Acks) > 0 {
				send()
			}
		}
		f.Acks = append(f.Acks, wire.Ack{Node: n, Seqs: seqs, Boot: e.boots[n]})
		total += len(seqs)
	}
	if len(f.Acks) > 0 {
		send()
	}
}
