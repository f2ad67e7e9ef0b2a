package mesh

import (
	"net/netip"
	"sync"

	"github.com/warpmesh/warp/wire"
	"github.com/warpmesh/warp/zones"
)

// builderPool holds EventsBuilders for goroutines that send now and then
// (awaiting publishers); the batcher and the event loop keep their own.
var builderPool = sync.Pool{New: func() any { return new(wire.EventsBuilder) }}

// bufPool holds datagram buffers for the same callers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, wire.MaxDatagramSize); return &b }}

// frameHeader returns the header of the Events frames this node numbers.
func (b *MeshBus) frameHeader(flags uint8) wire.Events {
	return wire.Events{Origin: b.name, Boot: b.boot, Zone: b.zone, Region: b.region, Flags: flags}
}

// sendTo seals body once and sends the same datagram to every address:
// nonces are per frame, and a receiver's replay window is its own, so one
// sealing serves all the receivers of a frame.
func (b *MeshBus) sendTo(v *view, body []byte, scratch *[]byte, addrs ...netip.AddrPort) {
	if len(addrs) == 0 {
		return
	}
	dg, err := b.sealer.Seal((*scratch)[:0], body)
	if err != nil {
		b.log.Error("mesh: sealing a frame failed", "err", err)
		return
	}
	*scratch = dg
	for _, a := range addrs {
		b.sendDatagram(v, a, dg)
	}
}

// sendDatagram sends one sealed datagram and accounts it by zone.
func (b *MeshBus) sendDatagram(v *view, to netip.AddrPort, dg []byte) {
	if err := b.tr.SendDatagram(to, dg); err != nil {
		b.c.drop("send")
		return
	}
	if p, ok := v.byAddr[to]; ok && p.zone != b.zone {
		b.c.sentRemote.add(len(dg))
	} else {
		b.c.sentLocal.add(len(dg))
	}
}

// plan splits the targets of one event or batch into the addresses it goes
// to directly and the relays (one per remote zone) that fan it out.
type plan struct {
	targets []zones.Target
	direct  []netip.AddrPort
	relays  []netip.AddrPort
}

func (p *plan) make(v *view, spread uint64, avoid func(string) bool) {
	p.targets = v.topo.AppendPlan(p.targets[:0], v.mode, spread, avoid)
	p.direct, p.relays = p.direct[:0], p.relays[:0]
	for _, t := range p.targets {
		addr, ok := v.addrOf(t.Node)
		if !ok {
			continue
		}
		if t.Relay {
			p.relays = append(p.relays, addr)
		} else {
			p.direct = append(p.direct, addr)
		}
	}
}

// sendEvents encodes evs in as many frames as they need and sends each to
// direct (plain) and to relays (marked for relaying). bld and scratch are the
// caller's.
func (b *MeshBus) sendEvents(v *view, evs []wire.Event, flags uint8, direct, relays []netip.AddrPort, bld *wire.EventsBuilder, body, scratch *[]byte) {
	if len(direct) > 0 {
		b.sendFrames(v, evs, flags, direct, bld, body, scratch)
	}
	if len(relays) > 0 {
		b.sendFrames(v, evs, flags|wire.FlagRelay, relays, bld, body, scratch)
	}
}

func (b *MeshBus) sendFrames(v *view, evs []wire.Event, flags uint8, to []netip.AddrPort, bld *wire.EventsBuilder, body, scratch *[]byte) {
	hdr := b.frameHeader(flags)
	flush := func() {
		if bld.Len() == 0 {
			return
		}
		*body = bld.Finish((*body)[:0])
		b.sendTo(v, *body, scratch, to...)
		b.c.batches.Add(1)
	}
	if err := bld.Reset(&hdr, wire.DefaultDatagramBudget); err != nil {
		b.log.Error("mesh: bad frame header", "err", err)
		return
	}
	for i := range evs {
		ok, err := bld.Append(&evs[i])
		if err == nil && !ok {
			flush()
			_ = bld.Reset(&hdr, wire.DefaultDatagramBudget)
			_, err = bld.Append(&evs[i])
		}
		if err != nil {
			// checkFits let it through, so this is a bug; never drop silently.
			b.log.Error("mesh: event cannot be framed", "key", evs[i].Key, "err", err)
			b.c.publishErrors.Add(1)
			continue
		}
		if bld.Len() >= b.opts.BatchSize {
			flush()
			_ = bld.Reset(&hdr, wire.DefaultDatagramBudget)
		}
	}
	flush()
}

// sendAwaited sends an awaited event for the first time, following the plan
// chosen for it (the relays per zone are remembered for retransmission).
func (b *MeshBus) sendAwaited(v *view, a *await, p *plan) {
	bld := builderPool.Get().(*wire.EventsBuilder)
	body, scratch := bufPool.Get().(*[]byte), bufPool.Get().(*[]byte)
	b.sendEvents(v, []wire.Event{a.ev}, 0, p.direct, p.relays, bld, body, scratch)
	bufPool.Put(body)
	bufPool.Put(scratch)
	builderPool.Put(bld)
	b.lastSend.Store(nanotime())
	b.kickLoop()
}
