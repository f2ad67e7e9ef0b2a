package wire_test

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// The targets here start where FuzzDecodeEvents stops: what a receiver does
// with an Events frame it accepted. Every transport turns a decoded event
// into the syncbus.Event its subscribers see (ToSync), and a gateway or a
// bridge turns it back (FromSync) and repacks events into datagrams (Split,
// EventsBuilder, CheckFits). Whatever a peer sent, those steps must neither
// panic nor change the event a subscriber sees.

// eventsSeeds returns Events bodies, plain and compressed, to start from.
func eventsSeeds(f *testing.F) [][]byte {
	r := rand.New(rand.NewPCG(7, 8))
	frames := []*wire.Events{sampleEvents(1), sampleEvents(40), goldenEventsFull(), goldenEventsLZ4()}
	for range 4 {
		frames = append(frames, randEvents(r, 1+r.IntN(8)))
	}
	// An event relayed from another node and zone, with a vector clock.
	frames = append(frames, &wire.Events{Origin: "gw", Boot: 9, Zone: "z1", Region: "r1", Events: []wire.Event{{
		Seq: 1, ID: goldenID(3), Key: "k", Op: syncbus.OpLeaseRevoke, Scope: syncbus.ScopeGlobal,
		Flags: wire.EventRelayed | wire.EventAckWanted, Origin: "n7", Zone: "z2", Region: "r2",
		VectorClock: map[string]uint64{"n7": 4, "n8": 1 << 40}, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano(),
	}}})
	var out [][]byte
	for _, fr := range frames {
		for _, c := range []bool{false, true} {
			b, err := wire.AppendEvents(nil, fr, c)
			if err != nil {
				f.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// FuzzConvert decodes an Events body and converts each event to what a
// subscriber sees and back: the subscriber's view survives the round trip,
// and what the conversion returns stays within the limits the decoder
// enforced.
func FuzzConvert(f *testing.F) {
	for _, b := range eventsSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fr wire.Events
		if err := wire.DecodeEvents(body, &fr); err != nil {
			return // FuzzDecodeEvents holds the decoder's error set
		}
		for i := range fr.Events {
			ev := &fr.Events[i]
			seen := ev.ToSync(fr.Origin, fr.Zone, fr.Region)
			checkSyncEvent(t, &seen)
			back := wire.FromSync(&seen, fr.Origin, fr.Zone, fr.Region)
			if back.ID != ev.ID || back.Key != ev.Key || back.Op != ev.Op || back.Scope != ev.Scope {
				t.Fatalf("FromSync(ToSync(ev)) changed the event\nev   %+v\nback %+v", *ev, back)
			}
			again := back.ToSync(fr.Origin, fr.Zone, fr.Region)
			if !sameSync(&seen, &again) {
				t.Fatalf("a subscriber would see another event after a round trip\nfirst  %+v\nsecond %+v", seen, again)
			}
			// The wire form FromSync returns is a valid event of its own:
			// a bridge or gateway can frame it again.
			back.Seq, back.Flags = ev.Seq, ev.Flags
			h := wire.Events{Origin: fr.Origin, Boot: fr.Boot, Zone: fr.Zone, Region: fr.Region}
			if err := wire.CheckFits(&h, &back, wire.MaxDatagramSize); err != nil && !errors.Is(err, wire.ErrTooLarge) {
				t.Fatalf("a decoded event, converted back, is invalid: %v\n%+v", err, back)
			}
		}
	})
}

// checkSyncEvent holds a subscriber's event to the decoder's limits.
func checkSyncEvent(t *testing.T, ev *syncbus.Event) {
	t.Helper()
	switch {
	case ev.Key == "" || len(ev.Key) > wire.MaxKeyLen:
		t.Fatalf("key of %d bytes reached a subscriber", len(ev.Key))
	case !ev.Op.Valid() || !ev.Scope.Valid():
		t.Fatalf("op %d, scope %d reached a subscriber", ev.Op, ev.Scope)
	case ev.Origin == "":
		t.Fatalf("an event without an origin reached a subscriber: %+v", *ev)
	case len(ev.Origin) > wire.MaxNameLen || len(ev.Zone) > wire.MaxNameLen || len(ev.Region) > wire.MaxNameLen:
		t.Fatalf("a name over %d bytes reached a subscriber: %+v", wire.MaxNameLen, *ev)
	case len(ev.VectorClock) > wire.MaxVectorClock:
		t.Fatalf("a vector clock of %d entries reached a subscriber", len(ev.VectorClock))
	}
}

// sameSync compares two subscriber events; nil and empty vector clocks
// travel alike.
func sameSync(a, b *syncbus.Event) bool {
	if len(a.VectorClock) == 0 && len(b.VectorClock) == 0 {
		x, y := *a, *b
		x.VectorClock, y.VectorClock = nil, nil
		return reflect.DeepEqual(x, y) && x.Time.Equal(y.Time)
	}
	return reflect.DeepEqual(*a, *b)
}

// FuzzSplit repacks the events of a decoded Events body into datagrams of
// a fuzzed budget, as a relay or a bridge's batcher does: every piece fits
// the budget sealed, decodes, and together they hold the same events in the
// same order. An event too large for the budget is an ErrTooLarge, never a
// silent drop, and never for an event CheckFits accepted.
func FuzzSplit(f *testing.F) {
	for i, b := range eventsSeeds(f) {
		f.Add(b, uint16([]int{0, 200, 600, 1400, 9000, 65535}[i%6]))
	}
	f.Fuzz(func(t *testing.T, body []byte, budget uint16) {
		var fr wire.Events
		if err := wire.DecodeEvents(body, &fr); err != nil {
			return
		}
		want := normEvents(&fr)
		fits := true
		for i := range fr.Events {
			if err := wire.CheckFits(&fr, &fr.Events[i], int(budget)); err != nil {
				if !errors.Is(err, wire.ErrTooLarge) {
					t.Fatalf("CheckFits of a decoded event: %v", err)
				}
				fits = false
			}
		}
		bodies, err := wire.Split(&fr, int(budget))
		if err != nil {
			if !errors.Is(err, wire.ErrTooLarge) {
				t.Fatalf("Split of a decoded frame: %v", err)
			}
			if fits {
				t.Fatalf("Split refused events CheckFits accepted at budget %d: %v", budget, err)
			}
			return
		}
		limit := int(budget)
		if limit == 0 {
			limit = wire.DefaultDatagramBudget
		}
		var got []wire.Event
		for _, b := range bodies {
			if len(b)+wire.MaxOverhead > limit && len(fr.Events) > 0 { // an empty frame is its header, whatever the budget
				t.Fatalf("a piece of %d bytes does not fit a datagram of %d sealed", len(b), limit)
			}
			var piece wire.Events
			if err := wire.DecodeEvents(b, &piece); err != nil {
				t.Fatalf("a piece Split made does not decode: %v", err)
			}
			if piece.Origin != fr.Origin || piece.Boot != fr.Boot || piece.Zone != fr.Zone ||
				piece.Region != fr.Region || piece.Flags != fr.Flags {
				t.Fatalf("a piece has another header: %+v, want %+v", piece, fr)
			}
			got = append(got, normEvents(&piece).Events...)
		}
		if !reflect.DeepEqual(got, want.Events) {
			t.Fatalf("Split changed the events\nwant %+v\ngot  %+v", want.Events, got)
		}
	})
}
