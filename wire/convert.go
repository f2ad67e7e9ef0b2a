package wire

import (
	"sync"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// The conversion between what a subscriber sees (syncbus.Event) and what
// travels (Event inside an Events frame) lives here, so that every
// transport — the mesh and each broker bridge — frames an event with the
// same code and a frame from any of them decodes the same.
//
// An Events frame carries its numbering node's name, zone and region once;
// an event repeats them only when they differ from the frame's (an event
// relayed by a gateway, or a WithRegion override).

// ToSync returns the event a subscriber receives for ev, carried in a frame
// numbered by origin in zone and region.
func (ev *Event) ToSync(origin, zone, region string) syncbus.Event {
	out := syncbus.Event{
		ID:          ev.ID,
		Key:         ev.Key,
		Op:          ev.Op,
		Origin:      origin,
		Zone:        zone,
		Region:      region,
		VectorClock: ev.VectorClock,
		Scope:       ev.Scope,
		Time:        time.Unix(0, ev.Time),
	}
	if ev.Origin != "" {
		out.Origin = ev.Origin
	}
	if ev.Zone != "" {
		out.Zone = ev.Zone
	}
	if ev.Region != "" {
		out.Region = ev.Region
	}
	return out
}

// FromSync returns the wire form of ev for a frame numbered by origin in
// zone and region: the event's Origin, Zone and Region are kept only where
// they differ from the frame's. Seq and Flags are left to the caller. An
// event with a zero Time gets none (0).
func FromSync(ev *syncbus.Event, origin, zone, region string) Event {
	w := Event{
		ID:          ev.ID,
		Key:         ev.Key,
		Op:          ev.Op,
		Scope:       ev.Scope,
		VectorClock: ev.VectorClock,
	}
	if !ev.Time.IsZero() {
		w.Time = ev.Time.UnixNano()
	}
	if ev.Origin != origin {
		w.Origin = ev.Origin
	}
	if ev.Zone != zone {
		w.Zone = ev.Zone
	}
	if ev.Region != region {
		w.Region = ev.Region
	}
	return w
}

// EventSizeBound returns an upper bound of ev's encoded size inside an
// Events frame, whatever its Seq, Time and Flags: cheap enough to settle,
// for almost every event, whether it fits a datagram without encoding it.
func EventSizeBound(ev *Event) int {
	// array header, seq delta, bin16 ID, key header, op, scope, flags,
	// time delta; then three optional names, each with its header.
	n := 1 + 9 + 18 + 5 + len(ev.Key) + 3 + 9 + 9
	n += 3*5 + len(ev.Origin) + len(ev.Zone) + len(ev.Region)
	if len(ev.VectorClock) > 0 {
		n += 5
		for name := range ev.VectorClock {
			n += 5 + len(name) + 9
		}
	}
	return n
}

// checkPool holds the EventsBuilders of CheckFits.
var checkPool = sync.Pool{New: func() any { return new(EventsBuilder) }}

// CheckFits reports, as an error matching ErrTooLarge (or ErrMalformed for
// an invalid event), an event that cannot fit a sealed datagram of budget
// bytes in a frame with header h, whatever else travels with it and
// whatever flags the frame and the event get. Events well below the budget
// are settled by EventSizeBound without encoding anything.
func CheckFits(h *Events, ev *Event, budget int) error {
	if budget <= 0 {
		budget = DefaultDatagramBudget
	}
	headerBound := 1 + 5 + 3*3 + len(h.Origin) + len(h.Zone) + len(h.Region) + 9 + 2 + 5
	if EventSizeBound(ev)+headerBound+MaxOverhead <= budget {
		return checkEvent(ev)
	}
	b := checkPool.Get().(*EventsBuilder)
	defer checkPool.Put(b)
	hdr := Events{Origin: h.Origin, Boot: ^uint64(0), Zone: h.Zone, Region: h.Region, Flags: ^uint8(0)}
	if err := b.Reset(&hdr, budget); err != nil {
		return err
	}
	probe := *ev
	probe.Seq = ^uint64(0) >> 1 // the widest a seq delta gets
	probe.Flags = ^uint8(0)
	probe.Time = -1 << 62 // a time delta of the widest encoding
	_, err := b.Append(&probe)
	return err
}
