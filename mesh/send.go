package mesh

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/warpmesh/warp/wire"
	"github.com/warpmesh/warp/zones"
)

// outbox is what one sending goroutine seals and frames with: its own
// Sealer, so that the frames of each sender ID leave in the order of their
// counters (a frame sealed by one goroutine and sent late, after another
// goroutine sent a thousand newer frames with the same sender ID, would
// fall behind the receivers' replay windows), and its buffers. An outbox
// is used by one goroutine at a time.
type outbox struct {
	mu      sync.Mutex // for the publishers' shared outboxes
	sealer  *wire.Sealer
	bld     wire.EventsBuilder
	body    []byte
	scratch []byte
}

func newOutbox(kr *wire.Keyring, label string) *outbox {
	return &outbox{
		sealer:  wire.NewSealer(kr, label),
		body:    make([]byte, 0, wire.MaxDatagramSize),
		scratch: make([]byte, 0, wire.MaxDatagramSize),
	}
}

// maxSenders is how many senders' replay windows a node keeps: each node
// seals with 2 + GOMAXPROCS sender IDs (the batcher's, the event loop's, the
// awaiting publishers'), so this covers clusters of a few thousand nodes.
const maxSenders = 16384

// outboxes are shared by the goroutines of awaiting publishers; each holds
// one for the seal-and-send of its event.
type outboxes struct {
	boxes []*outbox
	next  atomic.Uint32
}

func newOutboxes(n int, kr *wire.Keyring, label string) *outboxes {
	p := &outboxes{boxes: make([]*outbox, n)}
	for i := range p.boxes {
		p.boxes[i] = newOutbox(kr, label)
	}
	return p
}

// acquire returns a locked outbox, a free one if there is one.
func (p *outboxes) acquire() *outbox {
	start := int(p.next.Add(1))
	for i := range p.boxes {
		if ob := p.boxes[(start+i)%len(p.boxes)]; ob.mu.TryLock() {
			return ob
		}
	}
	ob := p.boxes[start%len(p.boxes)]
	ob.mu.Lock()
	return ob
}

// frameHeader returns the header of the Events frames this node numbers.
func (b *MeshBus) frameHeader(flags uint8) wire.Events {
	return wire.Events{Origin: b.name, Boot: b.boot, Zone: b.zone, Region: b.region, Flags: flags}
}

// class says which traffic counter a datagram goes to.
type class uint8

const (
	classData   class = iota // events and acknowledgements
	classRepair              // repair requests, retransmissions, digests
)

// sendTo seals body once and sends the same datagram to every address:
// nonces are per frame, and a receiver's replay window is its own, so one
// sealing serves all the receivers of a frame.
func (b *MeshBus) sendTo(v *view, c class, body []byte, ob *outbox, addrs ...netip.AddrPort) {
	if len(addrs) == 0 {
		return
	}
	dg, err := ob.sealer.Seal(ob.scratch[:0], body)
	if err != nil {
		b.log.Error("mesh: sealing a frame failed", "err", err)
		return
	}
	ob.scratch = dg
	if b.multi != nil && len(addrs) > 1 {
		// One system call for every receiver, where the transport can.
		if err := b.multi.SendDatagramTo(addrs, dg); err != nil {
			b.c.drop("send")
		}
		for _, a := range addrs {
			b.count(v, c, a, len(dg))
		}
		return
	}
	for _, a := range addrs {
		b.sendDatagram(v, c, a, dg)
	}
}

// sendDatagram sends one sealed datagram and accounts it by class and zone.
func (b *MeshBus) sendDatagram(v *view, c class, to netip.AddrPort, dg []byte) {
	if err := b.tr.SendDatagram(to, dg); err != nil {
		b.c.drop("send")
		return
	}
	b.count(v, c, to, len(dg))
}

// count accounts one datagram sent, by class and by the zone it went to.
func (b *MeshBus) count(v *view, c class, to netip.AddrPort, n int) {
	switch p, ok := v.byAddr[to]; {
	case c == classRepair:
		b.c.sentRepair.add(n)
	case ok && p.zone != b.zone:
		b.c.sentRemote.add(n)
	default:
		b.c.sentLocal.add(n)
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
// direct (plain) and to relays (marked for relaying), with the caller's
// outbox. It returns how many frames the events took.
func (b *MeshBus) sendEvents(v *view, evs []wire.Event, flags uint8, direct, relays []netip.AddrPort, ob *outbox) int {
	frames := 0
	if len(direct) > 0 {
		frames = b.sendFrames(v, evs, flags, direct, ob)
	}
	if len(relays) > 0 {
		frames = b.sendFrames(v, evs, flags|wire.FlagRelay, relays, ob)
	}
	return frames
}

// sendFrames frames evs and sends every frame to each address of to; it
// returns the number of frames.
func (b *MeshBus) sendFrames(v *view, evs []wire.Event, flags uint8, to []netip.AddrPort, ob *outbox) int {
	hdr := b.frameHeader(flags)
	bld := &ob.bld
	frames := 0
	flush := func() {
		if bld.Len() == 0 {
			return
		}
		frames++
		ob.body = bld.Finish(ob.body[:0])
		c := classData
		if flags&wire.FlagRetransmit != 0 {
			c = classRepair
		}
		b.sendTo(v, c, ob.body, ob, to...)
		b.c.batches.Add(1)
	}
	if err := bld.Reset(&hdr, wire.DefaultDatagramBudget); err != nil {
		b.log.Error("mesh: bad frame header", "err", err)
		return 0
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
	return frames
}

// sendAwaited sends an awaited event for the first time, following the plan
// chosen for it (the relays per zone are remembered for retransmission).
func (b *MeshBus) sendAwaited(v *view, a *await, p *plan) {
	ob := b.outboxes.acquire()
	b.sendEvents(v, []wire.Event{a.ev}, 0, p.direct, p.relays, ob)
	ob.mu.Unlock()
	b.lastSend.Store(nanotime())
	b.kickLoop()
}
