package mesh

import (
	"net/netip"

	"github.com/warpmesh/warp/mesh/internal/protocol"
	"github.com/warpmesh/warp/wire"
)

// sendMessage encodes one of the core's messages, seals each datagram once
// and sends it to every address of m.To. Events may take several
// datagrams: they are packed up to wire.DefaultDatagramBudget and
// MeshOptions.BatchSize events each.
func (b *MeshBus) sendMessage(m *protocol.Message) {
	if len(m.To) == 0 {
		return
	}
	var err error
	switch m.Type {
	case wire.FrameEvents:
		b.sendEvents(m)
		return
	case wire.FrameAcks:
		b.frame, err = wire.AppendAcks(b.frame[:0], &m.Acks, false)
	case wire.FrameRepairRequest:
		b.frame, err = wire.AppendRepairRequest(b.frame[:0], &m.Repairs, false)
	case wire.FrameUnavailable:
		b.frame, err = wire.AppendUnavailable(b.frame[:0], &m.Unavailable, false)
	case wire.FrameDigest:
		b.frame, err = wire.AppendDigest(b.frame[:0], &m.Digest, false)
	case wire.FrameCredit:
		b.frame, err = wire.AppendCredit(b.frame[:0], &m.Credit, false)
	default:
		b.log.Error("mesh: the protocol asked for an unknown frame", "type", m.Type)
		return
	}
	if err != nil {
		// The core built the frame from validated values: this is a bug,
		// and never silent.
		b.log.Error("mesh: encoding a frame failed", "type", m.Type, "err", err)
		b.c.publishErrors.Add(1)
		return
	}
	b.sendTo(m.Traffic, b.frame, m.To)
}

// sendEvents frames the events of m into as many datagrams as they need.
func (b *MeshBus) sendEvents(m *protocol.Message) {
	evs := m.Events.Events
	bld := &b.bld
	frames := 0
	flush := func() {
		if bld.Len() == 0 {
			return
		}
		frames++
		b.frame = bld.Finish(b.frame[:0])
		b.sendTo(m.Traffic, b.frame, m.To)
		b.c.batches.Add(1)
	}
	if err := bld.Reset(&m.Events, wire.DefaultDatagramBudget); err != nil {
		b.log.Error("mesh: bad frame header", "err", err)
		return
	}
	for i := range evs {
		ok, err := bld.Append(&evs[i])
		if err == nil && !ok {
			flush()
			_ = bld.Reset(&m.Events, wire.DefaultDatagramBudget)
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
			_ = bld.Reset(&m.Events, wire.DefaultDatagramBudget)
		}
	}
	flush()
	if frames > 1 && m.Traffic == protocol.TrafficData {
		// Several frames: the first ones were full, which tells how many
		// events make a datagram's worth.
		b.in.fill.Store(int64(max(2, min(len(evs)/frames, b.opts.BatchSize))))
	}
}

// sendTo seals body once and sends the same datagram to every address:
// nonces are per frame, and a receiver's replay window is its own, so one
// sealing serves all the receivers of a frame.
func (b *MeshBus) sendTo(traffic protocol.Traffic, body []byte, to []netip.AddrPort) {
	dg, err := b.sealer.Seal(b.sealed[:0], body)
	if err != nil {
		b.log.Error("mesh: sealing a frame failed", "err", err)
		return
	}
	b.sealed = dg
	if b.multi != nil && len(to) > 1 {
		// One system call for every receiver, where the transport can.
		if err := b.multi.SendDatagramTo(to, dg); err != nil {
			b.c.drop("send")
		}
		for _, a := range to {
			b.count(traffic, a, len(dg))
		}
		return
	}
	for _, a := range to {
		if err := b.tr.SendDatagram(a, dg); err != nil {
			b.c.drop("send")
			continue
		}
		b.count(traffic, a, len(dg))
	}
}

// count accounts one datagram sent, by traffic class and by the zone it
// went to.
func (b *MeshBus) count(traffic protocol.Traffic, to netip.AddrPort, n int) {
	switch {
	case traffic == protocol.TrafficRepair:
		b.c.sentRepair.add(n)
	case traffic == protocol.TrafficControl:
		b.c.sentControl.add(n)
	case b.core.IsRemote(to):
		b.c.sentRemote.add(n)
	default:
		b.c.sentLocal.add(n)
	}
}
