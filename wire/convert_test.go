package wire_test

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

func TestSyncConversionRoundTrip(t *testing.T) {
	ids := syncbus.NewIDGenerator()
	at := time.Unix(1700000000, 123456789)
	cases := []struct {
		name string
		ev   syncbus.Event
		// the wire fields FromSync must leave empty (the frame's)
		sameOrigin, sameZone, sameRegion bool
	}{
		{"local", syncbus.Event{ID: ids.Next(), Key: "user:1", Origin: "n1", Zone: "za", Region: "eu", Time: at}, true, true, true},
		{"region override", syncbus.Event{ID: ids.Next(), Key: "user:2", Origin: "n1", Zone: "za", Region: "us", Time: at, Scope: syncbus.ScopeGlobal}, true, true, false},
		{"relayed", syncbus.Event{ID: ids.Next(), Key: "lease-7", Op: syncbus.OpLeaseRevoke, Origin: "far", Zone: "zq", Region: "ap", Time: at,
			VectorClock: map[string]uint64{"far": 3}}, false, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := wire.FromSync(&c.ev, "n1", "za", "eu")
			if (w.Origin == "") != c.sameOrigin || (w.Zone == "") != c.sameZone || (w.Region == "") != c.sameRegion {
				t.Fatalf("FromSync kept origin %q zone %q region %q", w.Origin, w.Zone, w.Region)
			}
			// Through a real frame, as every transport sends it.
			f := wire.Events{Origin: "n1", Boot: 9, Zone: "za", Region: "eu", Events: []wire.Event{w}}
			f.Events[0].Seq = 1
			body, err := wire.AppendEvents(nil, &f, false)
			if err != nil {
				t.Fatal(err)
			}
			var got wire.Events
			if err := wire.DecodeEvents(body, &got); err != nil {
				t.Fatal(err)
			}
			back := got.Events[0].ToSync(got.Origin, got.Zone, got.Region)
			if !back.Time.Equal(c.ev.Time) {
				t.Fatalf("time %v, want %v", back.Time, c.ev.Time)
			}
			back.Time = c.ev.Time
			if !reflect.DeepEqual(back, c.ev) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", back, c.ev)
			}
		})
	}
}

func TestEventSizeBoundHolds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		ev := randEvent(r)
		f := wire.Events{Origin: "o", Events: []wire.Event{ev}}
		body, err := wire.AppendEvents(nil, &f, false)
		if err != nil {
			continue // randEvent may break a limit on purpose
		}
		empty := wire.Events{Origin: "o", Events: []wire.Event{}}
		base, _ := wire.AppendEvents(nil, &empty, false)
		if size := len(body) - len(base); size > wire.EventSizeBound(&ev) {
			t.Fatalf("event %d encodes to %d bytes, bound says %d: %+v", i, size, wire.EventSizeBound(&ev), ev)
		}
	}
}

func TestCheckFits(t *testing.T) {
	h := wire.Events{Origin: "node-1", Zone: "eu-west-1a", Region: "eu-west-1"}
	small := wire.Event{ID: syncbus.EventID{1}, Key: "user:1"}
	if err := wire.CheckFits(&h, &small, 0); err != nil {
		t.Fatalf("small event: %v", err)
	}
	huge := wire.Event{ID: syncbus.EventID{1}, Key: strings.Repeat("k", 1500)}
	if err := wire.CheckFits(&h, &huge, 0); !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("1500-byte key in a 1400-byte datagram: %v, want ErrTooLarge", err)
	}
	if err := wire.CheckFits(&h, &huge, 4000); err != nil {
		t.Fatalf("1500-byte key in a 4000-byte datagram: %v", err)
	}
	bad := wire.Event{ID: syncbus.EventID{1}}
	if err := wire.CheckFits(&h, &bad, 0); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("empty key: %v, want ErrMalformed", err)
	}
	// Whatever CheckFits accepts near the limit, a builder takes with the
	// widest numbers and flags.
	for n := 1100; n < 1400; n += 7 {
		ev := wire.Event{ID: syncbus.EventID{1}, Key: strings.Repeat("x", n), Time: -1 << 62}
		if wire.CheckFits(&h, &ev, 0) != nil {
			continue
		}
		var b wire.EventsBuilder
		hdr := h
		hdr.Boot, hdr.Flags = ^uint64(0), 0xff
		if err := b.Reset(&hdr, 0); err != nil {
			t.Fatal(err)
		}
		ev.Seq, ev.Flags = ^uint64(0)>>1, 0xff
		if ok, err := b.Append(&ev); !ok || err != nil {
			t.Fatalf("key of %d bytes passed CheckFits but does not fit a frame: %v", n, err)
		}
	}
}

// An ack of the first layout ([Node, Seqs], no incarnation) still decodes,
// with Boot 0: a publisher then cannot tell which incarnation acked.
func TestAckWithoutBootDecodes(t *testing.T) {
	// [origin "o", boot 1, [["n", [1, 1]]]]
	body := []byte{byte(wire.FrameAcks), 0x93, 0xa1, 'o', 0x01, 0x91, 0x92, 0xa1, 'n', 0x92, 0x01, 0x01}
	var f wire.Acks
	f.Acks = []wire.Ack{{Boot: 99}} // a reused value must not keep an old Boot
	if err := wire.DecodeAcks(body, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Acks) != 1 || f.Acks[0].Node != "n" || f.Acks[0].Boot != 0 || !reflect.DeepEqual(f.Acks[0].Seqs, []uint64{1, 2}) {
		t.Fatalf("decoded %+v", f.Acks)
	}
}

// A digest of the first layout ([Origin, Boot, Seq, Start]) still
// decodes, not blocked.
func TestDigestWithoutBlockedDecodes(t *testing.T) {
	body := []byte{byte(wire.FrameDigest), 0x94, 0xa1, 'o', 0x01, 0x05, 0x02}
	f := wire.Digest{Blocked: true}
	if err := wire.DecodeDigest(body, &f); err != nil {
		t.Fatal(err)
	}
	if f != (wire.Digest{Origin: "o", Boot: 1, Seq: 5, Start: 2}) {
		t.Fatalf("decoded %+v", f)
	}
}
