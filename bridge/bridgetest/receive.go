package bridgetest

import (
	"bytes"
	"context"
	"maps"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// ReceiveBus is what ReceiveHarness needs of a bus.
type ReceiveBus interface {
	Metrics() syncbus.Metrics
	SubscribeAll(ctx context.Context) (<-chan syncbus.Event, error)
}

// ReceiveHarness is the judge of a bridge's FuzzReceive. It judges each
// input independently of the bus: an Opener of its own, with the bus's key
// and label, sees exactly the inputs the bus sees, in the same order, so
// its replay window agrees with the bus's.
//
// A fuzz target builds its bus with Name, Key and Label, hands it to
// Start, adds Seeds to the corpus and runs each input through Check. A
// ReceiveHarness belongs to one fuzz target; it is not safe for concurrent
// use.
type ReceiveHarness struct {
	// Name, Key and Label are what the bus must be built with: its node
	// name, its only secret key and its cluster label. NewReceiveHarness
	// sets them; they must not change.
	Name, Label string
	Key         []byte

	boot   uint64
	bus    ReceiveBus
	all    <-chan syncbus.Event
	opener *wire.Opener
	sealer *wire.Sealer // seals mode-1 bodies
}

// NewReceiveHarness returns a harness for a bus named "rx" on the label
// "fuzz".
func NewReceiveHarness(f *testing.F) *ReceiveHarness {
	h := &ReceiveHarness{Name: "rx", Label: "fuzz", Key: bytes.Repeat([]byte{7}, 32)}
	kr, err := wire.NewKeyring(h.Key)
	if err != nil {
		f.Fatal(err)
	}
	h.opener = wire.NewOpener(kr, h.Label)
	h.sealer = wire.NewSealer(kr, h.Label)
	return h
}

// Start watches b, whose boot ID is boot, through an all-keys
// subscription. Call it once, before Seeds and Check.
func (h *ReceiveHarness) Start(f *testing.F, b ReceiveBus, boot uint64) {
	h.bus, h.boot = b, boot
	all, err := b.SubscribeAll(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	h.all = all
}

// Seed is one input of the seed corpus: Mode 0 is a message as a broker
// hands it over, Mode 1 a frame body that Check seals first.
type Seed struct {
	Mode byte
	Data []byte
}

// Seeds returns valid frames of every type, sealed (mode 0) and as bodies
// (mode 1), and a few messages that are not frames at all.
func (h *ReceiveHarness) Seeds(f *testing.F) []Seed {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	id := func(b byte) (e syncbus.EventID) { e[0], e[15] = b, b; return e }
	var bodies [][]byte
	add := func(b []byte, err error) {
		if err != nil {
			f.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	evs := &wire.Events{Origin: "pub", Boot: 11, Zone: "z1", Region: "r1", Events: []wire.Event{
		{Seq: 1, ID: id(1), Key: "user/1", Time: t0},
		{Seq: 2, ID: id(2), Key: "user/2", Flags: wire.EventAckWanted, Scope: syncbus.ScopeGlobal, Time: t0 + 5},
		{Seq: 3, ID: id(3), Key: "lease-9", Op: syncbus.OpLeaseRevoke, Time: t0 + 9},
		{Seq: 4, ID: id(4), Key: "user/3", Flags: wire.EventRelayed, Origin: "far", Zone: "z9", Region: "r9",
			VectorClock: map[string]uint64{"far": 3}, Time: t0 + 12},
	}}
	for _, c := range []bool{false, true} {
		add(wire.AppendEvents(nil, evs, c))
	}
	gap := &wire.Events{Origin: "pub", Boot: 11, Events: []wire.Event{{Seq: 9, ID: id(9), Key: "user/9", Time: t0 + 20}}}
	add(wire.AppendEvents(nil, gap, false))
	own := &wire.Events{Origin: h.Name, Boot: 1, Events: []wire.Event{{Seq: 1, ID: id(5), Key: "k"}}}
	add(wire.AppendEvents(nil, own, false))
	add(wire.AppendAcks(nil, &wire.Acks{Origin: h.Name, Boot: h.boot, Acks: []wire.Ack{{Node: "pub", Seqs: []uint64{1, 2}}}}, false))
	add(wire.AppendDigest(nil, &wire.Digest{Origin: "pub", Boot: 11, Seq: 30, Start: 1}, false))
	add(wire.AppendPresence(nil, &wire.Presence{Node: "peer", Zone: "z2", Boot: 3, Interval: time.Second}, false))
	add(wire.AppendPresence(nil, &wire.Presence{Node: "peer", Zone: "z2", Boot: 3, Leaving: true}, false))
	add(wire.AppendRepairRequest(nil, &wire.RepairRequest{Origin: "pub", Boot: 11, Ranges: []wire.SeqRange{{From: 1, To: 2}}}, false))
	add(wire.AppendCredit(nil, &wire.Credit{Origin: "pub", Boot: 11, Node: h.Name, NodeBoot: 1, Limit: 5}, false))

	var out []Seed
	for _, b := range bodies {
		d, err := h.sealer.Seal(nil, b)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, Seed{0, d}, Seed{1, b})
	}
	other, _ := wire.NewKeyring(bytes.Repeat([]byte{8}, 32))
	foreignKey, _ := wire.NewSealer(other, h.Label).Seal(nil, bodies[0])
	clear, _ := wire.NewSealer(nil, h.Label).Seal(nil, bodies[0])
	return append(out, Seed{0, nil}, Seed{0, []byte("hello, not a frame")}, Seed{0, []byte{wire.Marker}},
		Seed{0, foreignKey}, Seed{0, clear})
}

// expect returns the drop reason the bus must count for msg ("" when it
// accepts it) and, for an accepted Events frame, its events.
func (h *ReceiveHarness) expect(msg []byte) (reason string, events []wire.Event) {
	if !wire.IsFrame(msg) {
		return "foreign", nil
	}
	body, _, err := h.opener.Open(nil, msg)
	if err != nil {
		return wire.Reason(err), nil
	}
	typ, err := wire.PeekType(body)
	if err != nil {
		return wire.Reason(err), nil
	}
	switch typ {
	case wire.FrameEvents:
		var fr wire.Events
		if err := wire.DecodeEvents(body, &fr); err != nil {
			return wire.Reason(err), nil
		}
		if fr.Origin == h.Name {
			if fr.Boot != h.boot {
				return "own-name", nil
			}
			return "", nil // its own frame: delivered when published
		}
		return "", fr.Events
	case wire.FrameAcks:
		err = wire.DecodeAcks(body, new(wire.Acks))
	case wire.FrameDigest:
		err = wire.DecodeDigest(body, new(wire.Digest))
	case wire.FramePresence:
		var p wire.Presence
		if err = wire.DecodePresence(body, &p); err == nil && p.Node == h.Name && p.Boot != h.boot {
			return "own-name", nil
		}
	default:
		return "unexpected", nil
	}
	if err != nil {
		return wire.Reason(err), nil
	}
	return "", nil
}

// Check runs one input through receive, which must hand msg to the bus as
// its broker would and return once the bus has handled it, and holds the
// bus to the invariants: no panic; a message that is not a valid frame for
// this node is exactly one drop, counted under the reason wire (or the
// bridge) gives, and delivers nothing; a valid Events frame delivers a
// subsequence of its events, each within wire's limits; a resync names
// the subscription. Mode and data are as in Seed.
func (h *ReceiveHarness) Check(t *testing.T, mode byte, data []byte, receive func(msg []byte)) {
	msg := data
	if mode&1 == 1 {
		sealed, err := h.sealer.Seal(nil, data)
		if err != nil {
			return // a body no node could send
		}
		msg = sealed
	}
	reason, events := h.expect(msg)
	before := h.bus.Metrics().DropsByReason
	receive(msg)
	after := h.bus.Metrics().DropsByReason
	var more uint64
	for r, n := range after {
		more += n - before[r]
	}
	switch {
	case reason != "" && (more != 1 || after[reason] != before[reason]+1):
		t.Fatalf("a message refused as %q: drops went from %v to %v, want one more %q", reason, before, maps.Clone(after), reason)
	case reason == "" && more != 0:
		t.Fatalf("a valid frame was counted as a drop: %v to %v", before, after)
	}
	// Delivery is synchronous: what the message delivered waits in the
	// subscription now.
	next := 0
	for {
		var ev syncbus.Event
		select {
		case ev = <-h.all:
		default:
			return
		}
		if ev.Op == syncbus.OpResync {
			if ev.Key != "" {
				t.Fatalf("resync of the all-events subscription names %q", ev.Key)
			}
			continue
		}
		checkDelivered(t, &ev)
		for next < len(events) && (events[next].ID != ev.ID || events[next].Key != ev.Key || events[next].Op != ev.Op) {
			next++
		}
		if next == len(events) {
			t.Fatalf("delivered %+v, which is not among the frame's events (reason %q)", ev, reason)
		}
		next++
	}
}

// checkDelivered holds a delivered event to wire's limits.
func checkDelivered(t *testing.T, ev *syncbus.Event) {
	t.Helper()
	switch {
	case ev.Key == "" || len(ev.Key) > wire.MaxKeyLen:
		t.Fatalf("delivered a key of %d bytes", len(ev.Key))
	case ev.Op != syncbus.OpInvalidate && ev.Op != syncbus.OpLeaseRevoke, !ev.Scope.Valid():
		t.Fatalf("delivered op %d, scope %d", ev.Op, ev.Scope)
	case ev.Origin == "" || len(ev.Origin) > wire.MaxNameLen || len(ev.Zone) > wire.MaxNameLen || len(ev.Region) > wire.MaxNameLen:
		t.Fatalf("delivered names out of bounds: %+v", *ev)
	case len(ev.VectorClock) > wire.MaxVectorClock:
		t.Fatalf("delivered a vector clock of %d entries", len(ev.VectorClock))
	}
}
