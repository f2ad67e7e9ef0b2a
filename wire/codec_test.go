package wire_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// roundTrip encodes v with enc, checks the type byte, decodes into a fresh
// value with dec and returns it.
func roundTrip[T any](t *testing.T, v *T, compress bool, want wire.FrameType,
	enc func([]byte, *T, bool) ([]byte, error), dec func([]byte, *T) error) *T {
	t.Helper()
	body, err := enc([]byte("prefix"), v, compress)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	if !bytes.HasPrefix(body, []byte("prefix")) {
		t.Fatalf("encode did not append to dst")
	}
	body = body[len("prefix"):]
	got, err := wire.PeekType(body)
	if err != nil || got != want {
		t.Fatalf("PeekType = %v, %v; want %v", got, err, want)
	}
	out := new(T)
	if err := dec(body, out); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return out
}

func TestEventsRoundTrip(t *testing.T) {
	vc := map[string]uint64{"n1": 3, "n2": 1 << 40}
	cases := map[string]*wire.Events{
		"empty": {Origin: "n1"},
		"one":   sampleEvents(1),
		"many":  sampleEvents(200),
		"extremes": {Origin: strings.Repeat("o", wire.MaxNameLen), Boot: 1<<64 - 1, Zone: "z", Region: "r", Flags: 0xff,
			Events: []wire.Event{
				{Seq: 1<<64 - 1, Key: strings.Repeat("k", wire.MaxKeyLen), Op: syncbus.OpResync, Scope: syncbus.ScopeGlobal, Flags: 0xff, Time: -1 << 63},
				{Seq: 0, Key: "x", Time: 1<<63 - 1, Origin: "gw", VectorClock: vc},
				{Seq: 5, Key: "y", Op: syncbus.OpLeaseRevoke, Region: "only-region"},
				{Seq: 4, Key: "z", Zone: "only-zone", Time: -5},
			}},
	}
	for name, f := range cases {
		for _, compress := range []bool{false, true} {
			got := roundTrip(t, f, compress, wire.FrameEvents, wire.AppendEvents, wire.DecodeEvents)
			if !reflect.DeepEqual(normEvents(got), normEvents(f)) {
				t.Errorf("%s (compress=%v): round trip changed the frame\n got %+v\nwant %+v", name, compress, got, f)
			}
		}
	}
}

func TestCompressionShrinksBatches(t *testing.T) {
	f := sampleEvents(64)
	plain, err := wire.AppendEvents(nil, f, false)
	if err != nil {
		t.Fatal(err)
	}
	packed, err := wire.AppendEvents(nil, f, true)
	if err != nil {
		t.Fatal(err)
	}
	if packed[0] != byte(wire.FrameEvents)|0x80 || len(packed) >= len(plain) {
		t.Fatalf("compressed body: type byte %#x, %d bytes, plain %d", packed[0], len(packed), len(plain))
	}
	// A frame too small to gain stays plain even when compression is asked.
	small, err := wire.AppendEvents(nil, sampleEvents(1), true)
	if err != nil {
		t.Fatal(err)
	}
	if small[0] != byte(wire.FrameEvents) {
		t.Fatalf("one-event body compressed: type byte %#x", small[0])
	}
}

func TestControlRoundTrips(t *testing.T) {
	acks := &wire.Acks{Origin: "pub", Boot: 7, Acks: []wire.Ack{
		{Node: "a", Seqs: []uint64{1, 2, 3, 10, 9, 1<<64 - 1, 0}},
		{Node: "b"},
		{Node: strings.Repeat("n", wire.MaxNameLen), Seqs: []uint64{42}},
	}}
	for _, c := range []bool{false, true} {
		got := roundTrip(t, acks, c, wire.FrameAcks, wire.AppendAcks, wire.DecodeAcks)
		if !reflect.DeepEqual(normAcks(got), normAcks(acks)) {
			t.Errorf("acks: got %+v, want %+v", got, acks)
		}
		rr := &wire.RepairRequest{Origin: "o", Boot: 1, Ranges: []wire.SeqRange{{1, 1}, {5, 900}, {1 << 40, 1<<64 - 1}}}
		if got := roundTrip(t, rr, c, wire.FrameRepairRequest, wire.AppendRepairRequest, wire.DecodeRepairRequest); !reflect.DeepEqual(got, rr) {
			t.Errorf("repair request: got %+v, want %+v", got, rr)
		}
		un := &wire.Unavailable{Origin: "o", Boot: 2, Ranges: []wire.SeqRange{{0, 0}, {3, 4}}}
		if got := roundTrip(t, un, c, wire.FrameUnavailable, wire.AppendUnavailable, wire.DecodeUnavailable); !reflect.DeepEqual(got, un) {
			t.Errorf("unavailable: got %+v, want %+v", got, un)
		}
		for _, dg := range []*wire.Digest{
			{Origin: "o", Boot: 3, Seq: 1 << 50, Start: 1 << 40},
			{Origin: "o", Boot: 3, Seq: 9, Blocked: true},
			{Origin: "o", Boot: 3, Seq: 9, Start: 2, Relay: true},
		} {
			if got := roundTrip(t, dg, c, wire.FrameDigest, wire.AppendDigest, wire.DecodeDigest); *got != *dg {
				t.Errorf("digest: got %+v, want %+v", got, dg)
			}
		}
		for _, pr := range []*wire.Presence{
			{Node: "bridge-1", Zone: "z1", Region: "r1", Boot: 9, Interval: 2 * time.Second, Leaving: true},
			{Node: "b", Interval: 1<<63 - 1},
		} {
			if got := roundTrip(t, pr, c, wire.FramePresence, wire.AppendPresence, wire.DecodePresence); *got != *pr {
				t.Errorf("presence: got %+v, want %+v", got, pr)
			}
		}
	}
}

// TestRandomRoundTrips is the property: any valid frame decodes to itself,
// compressed or not, also when decoded into a value that held another frame.
func TestRandomRoundTrips(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var reusedEvents wire.Events
	var reusedAcks wire.Acks
	var reusedRR wire.RepairRequest
	for i := range 300 {
		compress := i%2 == 0
		f := randEvents(r, r.IntN(40))
		body, err := wire.AppendEvents(nil, f, compress)
		if err != nil {
			t.Fatalf("case %d: encode: %v", i, err)
		}
		if err := wire.DecodeEvents(body, &reusedEvents); err != nil {
			t.Fatalf("case %d: decode: %v", i, err)
		}
		if !reflect.DeepEqual(normEvents(&reusedEvents), normEvents(f)) {
			t.Fatalf("case %d: events round trip differs\n got %+v\nwant %+v", i, reusedEvents, *f)
		}

		a := &wire.Acks{Origin: randName(r, 50, false), Boot: randUint(r)}
		for range r.IntN(20) {
			a.Acks = append(a.Acks, wire.Ack{Node: randName(r, 30, false), Seqs: randSeqs(r, r.IntN(50)), Boot: randUint(r)})
		}
		if body, err = wire.AppendAcks(nil, a, compress); err != nil {
			t.Fatalf("case %d: encode acks: %v", i, err)
		}
		if err := wire.DecodeAcks(body, &reusedAcks); err != nil {
			t.Fatalf("case %d: decode acks: %v", i, err)
		}
		if !reflect.DeepEqual(normAcks(&reusedAcks), normAcks(a)) {
			t.Fatalf("case %d: acks round trip differs\n got %+v\nwant %+v", i, reusedAcks, *a)
		}

		rr := &wire.RepairRequest{Origin: randName(r, 50, false), Boot: randUint(r), Ranges: randRanges(r, r.IntN(30))}
		if body, err = wire.AppendRepairRequest(nil, rr, compress); err != nil {
			t.Fatalf("case %d: encode repair: %v", i, err)
		}
		if err := wire.DecodeRepairRequest(body, &reusedRR); err != nil {
			t.Fatalf("case %d: decode repair: %v", i, err)
		}
		if !reflect.DeepEqual(normRanges(reusedRR.Ranges), normRanges(rr.Ranges)) || reusedRR.Origin != rr.Origin || reusedRR.Boot != rr.Boot {
			t.Fatalf("case %d: repair round trip differs\n got %+v\nwant %+v", i, reusedRR, *rr)
		}
	}
}

func TestEncodeRejectsInvalidFrames(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	ev := func(mod func(*wire.Event)) *wire.Events {
		e := wire.Event{Seq: 1, Key: "k"}
		mod(&e)
		return &wire.Events{Origin: "o", Events: []wire.Event{e}}
	}
	bigVC := map[string]uint64{}
	for i := range wire.MaxVectorClock + 1 {
		bigVC[long(i+1)] = 1
	}
	cases := []struct {
		name string
		f    *wire.Events
		want error
	}{
		{"empty origin", &wire.Events{}, wire.ErrMalformed},
		{"long origin", &wire.Events{Origin: long(wire.MaxNameLen + 1)}, wire.ErrTooLarge},
		{"long zone", &wire.Events{Origin: "o", Zone: long(wire.MaxNameLen + 1)}, wire.ErrTooLarge},
		{"long region", &wire.Events{Origin: "o", Region: long(wire.MaxNameLen + 1)}, wire.ErrTooLarge},
		{"empty key", ev(func(e *wire.Event) { e.Key = "" }), wire.ErrMalformed},
		{"long key", ev(func(e *wire.Event) { e.Key = long(wire.MaxKeyLen + 1) }), wire.ErrTooLarge},
		{"bad op", ev(func(e *wire.Event) { e.Op = 3 }), wire.ErrMalformed},
		{"bad scope", ev(func(e *wire.Event) { e.Scope = 2 }), wire.ErrMalformed},
		{"long event origin", ev(func(e *wire.Event) { e.Origin = long(256) }), wire.ErrTooLarge},
		{"long event zone", ev(func(e *wire.Event) { e.Zone = long(256) }), wire.ErrTooLarge},
		{"long event region", ev(func(e *wire.Event) { e.Region = long(256) }), wire.ErrTooLarge},
		{"big vector clock", ev(func(e *wire.Event) { e.VectorClock = bigVC }), wire.ErrTooLarge},
		{"empty clock name", ev(func(e *wire.Event) { e.VectorClock = map[string]uint64{"": 1} }), wire.ErrMalformed},
		{"too many events", &wire.Events{Origin: "o", Events: make([]wire.Event, wire.MaxEventsPerFrame+1)}, wire.ErrTooLarge},
		{"body over limit", func() *wire.Events {
			f := &wire.Events{Origin: "o"}
			for i := range 200 {
				f.Events = append(f.Events, wire.Event{Seq: uint64(i), Key: long(wire.MaxKeyLen)})
			}
			return f
		}(), wire.ErrTooLarge},
	}
	for _, c := range cases {
		for _, compress := range []bool{false, true} {
			dst := []byte("keep")
			out, err := wire.AppendEvents(dst, c.f, compress)
			if !errors.Is(err, c.want) {
				t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			}
			if string(out) != "keep" {
				t.Errorf("%s: dst changed on error: %q", c.name, out)
			}
		}
	}

	if _, err := wire.AppendAcks(nil, &wire.Acks{Origin: "o", Acks: []wire.Ack{{Node: ""}}}, false); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("ack with empty node: %v", err)
	}
	if _, err := wire.AppendAcks(nil, &wire.Acks{Origin: "o", Acks: []wire.Ack{{Node: "n", Seqs: make([]uint64, wire.MaxAckSeqs+1)}}}, false); !errors.Is(err, wire.ErrTooLarge) {
		t.Errorf("too many acked seqs: %v", err)
	}
	if _, err := wire.AppendAcks(nil, &wire.Acks{Origin: "o", Acks: make([]wire.Ack, wire.MaxAckNodes+1)}, false); !errors.Is(err, wire.ErrTooLarge) {
		t.Errorf("too many ack nodes: %v", err)
	}
	if _, err := wire.AppendRepairRequest(nil, &wire.RepairRequest{Origin: "o", Ranges: []wire.SeqRange{{5, 4}}}, false); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("reversed range: %v", err)
	}
	if _, err := wire.AppendUnavailable(nil, &wire.Unavailable{Origin: "o", Ranges: make([]wire.SeqRange, wire.MaxRanges+1)}, false); !errors.Is(err, wire.ErrTooLarge) {
		t.Errorf("too many ranges: %v", err)
	}
	if _, err := wire.AppendDigest(nil, &wire.Digest{}, false); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("digest without origin: %v", err)
	}
	if _, err := wire.AppendDigest(nil, &wire.Digest{Origin: "o", Seq: 4, Start: 5}, false); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("digest starting beyond its seq: %v", err)
	}
	if _, err := wire.AppendPresence(nil, &wire.Presence{Node: "n", Interval: -1}, false); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("negative interval: %v", err)
	}
	if _, err := wire.AppendPresence(nil, &wire.Presence{Node: "n", Zone: long(256)}, false); !errors.Is(err, wire.ErrTooLarge) {
		t.Errorf("long presence zone: %v", err)
	}
}

// decoders lists every decoder with a valid body for it.
func decoders(t *testing.T) map[string]struct {
	body   []byte
	decode func([]byte) error
} {
	t.Helper()
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	vcFrame := sampleEvents(3)
	vcFrame.Events[1].VectorClock = map[string]uint64{"a": 1, "b": 2}
	vcFrame.Events[2].Origin, vcFrame.Events[2].Zone = "gw", "z2"
	return map[string]struct {
		body   []byte
		decode func([]byte) error
	}{
		"events":     {must(wire.AppendEvents(nil, vcFrame, false)), func(b []byte) error { return wire.DecodeEvents(b, new(wire.Events)) }},
		"events/lz4": {must(wire.AppendEvents(nil, sampleEvents(30), true)), func(b []byte) error { return wire.DecodeEvents(b, new(wire.Events)) }},
		"acks":       {must(wire.AppendAcks(nil, &wire.Acks{Origin: "o", Boot: 1, Acks: []wire.Ack{{Node: "n1", Seqs: []uint64{1, 2}}, {Node: "n2", Seqs: []uint64{300}}}}, false)), func(b []byte) error { return wire.DecodeAcks(b, new(wire.Acks)) }},
		"repair":     {must(wire.AppendRepairRequest(nil, &wire.RepairRequest{Origin: "o", Boot: 1, Ranges: []wire.SeqRange{{1, 4}, {300, 70000}}}, false)), func(b []byte) error { return wire.DecodeRepairRequest(b, new(wire.RepairRequest)) }},
		"unavail":    {must(wire.AppendUnavailable(nil, &wire.Unavailable{Origin: "o", Boot: 1, Ranges: []wire.SeqRange{{1, 4}}}, false)), func(b []byte) error { return wire.DecodeUnavailable(b, new(wire.Unavailable)) }},
		"digest":     {must(wire.AppendDigest(nil, &wire.Digest{Origin: "o", Boot: 1, Seq: 99999}, false)), func(b []byte) error { return wire.DecodeDigest(b, new(wire.Digest)) }},
		"presence":   {must(wire.AppendPresence(nil, &wire.Presence{Node: "n", Zone: "z", Region: "r", Boot: 1, Interval: time.Second}, false)), func(b []byte) error { return wire.DecodePresence(b, new(wire.Presence)) }},
		"announce":   {must(wire.AppendAnnounce(nil, &wire.Announce{Node: "n", Addr: netip.MustParseAddrPort("192.0.2.1:7946"), Zone: "z"}, false)), func(b []byte) error { return wire.DecodeAnnounce(b, new(wire.Announce)) }},
	}
}

// TestTruncatedBodies cuts every valid body at every length: each prefix
// must fail cleanly (a prefix may only succeed if it is the whole payload,
// for bodies whose trailing bytes are ignored — none here).
func TestTruncatedBodies(t *testing.T) {
	for name, c := range decoders(t) {
		if err := c.decode(c.body); err != nil {
			t.Fatalf("%s: valid body: %v", name, err)
		}
		for n := range len(c.body) {
			err := c.decode(c.body[:n])
			if err == nil {
				t.Errorf("%s: prefix of %d/%d bytes decoded", name, n, len(c.body))
				continue
			}
			if !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("%s: prefix %d: %v does not match ErrMalformed", name, n, err)
			}
		}
	}
}

// TestBitFlippedBodies flips every bit of every valid body: decoding must
// not panic, and every error must be one of ours.
func TestBitFlippedBodies(t *testing.T) {
	for name, c := range decoders(t) {
		failures := 0
		for i := range len(c.body) * 8 {
			b := bytes.Clone(c.body)
			b[i/8] ^= 1 << (i % 8)
			err := c.decode(b)
			if err != nil {
				failures++
				if !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrTooLarge) {
					t.Errorf("%s: bit %d: unexpected error %v", name, i, err)
				}
			}
		}
		if failures == 0 {
			t.Errorf("%s: no bit flip was detected", name)
		}
	}
}

func TestDecodeRejectsWrongType(t *testing.T) {
	body, err := wire.AppendDigest(nil, &wire.Digest{Origin: "o"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.DecodeEvents(body, new(wire.Events)); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("digest decoded as events: %v", err)
	}
	for _, b := range [][]byte{nil, {0}, {byte(wire.FrameAnnounce) + 1}, {0x7f}, {0x80}} {
		if _, err := wire.PeekType(b); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("PeekType(%x) = %v, want ErrMalformed", b, err)
		}
	}
}

// TestLyingCompressedLength gives compressed bodies declared lengths that
// do not match their block: over the limit, over lz4's ratio, short and long.
func TestLyingCompressedLength(t *testing.T) {
	good, err := wire.AppendEvents(nil, sampleEvents(64), true)
	if err != nil {
		t.Fatal(err)
	}
	if good[0]&0x80 == 0 {
		t.Fatal("sample body did not compress")
	}
	n, k := binary.Uvarint(good[1:])
	block := good[1+k:]
	withLen := func(l uint64) []byte {
		b := []byte{good[0]}
		b = binary.AppendUvarint(b, l)
		return append(b, block...)
	}
	cases := []struct {
		name string
		body []byte
		want error
	}{
		{"over limit", withLen(wire.MaxBodySize + 1), wire.ErrTooLarge},
		{"over lz4 ratio", append(binary.AppendUvarint([]byte{good[0]}, 100_000), 0x10, 'a'), wire.ErrMalformed},
		{"short", withLen(n - 1), wire.ErrMalformed},
		{"long", withLen(n + 1), wire.ErrMalformed},
		{"zero", withLen(0), wire.ErrMalformed},
		{"bad varint", []byte{good[0], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, wire.ErrMalformed},
		{"garbage block", append(binary.AppendUvarint([]byte{good[0]}, 200), bytes.Repeat([]byte{0xff}, 20)...), wire.ErrMalformed},
	}
	for _, c := range cases {
		if err := wire.DecodeEvents(c.body, new(wire.Events)); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	if err := wire.DecodeEvents(withLen(n), new(wire.Events)); err != nil {
		t.Fatalf("rebuilt body with the true length: %v", err)
	}
}

func TestDecodeReusesSlices(t *testing.T) {
	big, err := wire.AppendEvents(nil, sampleEvents(50), false)
	if err != nil {
		t.Fatal(err)
	}
	small, err := wire.AppendEvents(nil, sampleEvents(10), false)
	if err != nil {
		t.Fatal(err)
	}
	var f wire.Events
	if err := wire.DecodeEvents(big, &f); err != nil {
		t.Fatal(err)
	}
	first := &f.Events[0]
	if err := wire.DecodeEvents(small, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Events) != 10 || &f.Events[0] != first {
		t.Fatalf("decode into a used value did not reuse its slice (len %d)", len(f.Events))
	}
	// A failed decode leaves no partial events behind.
	if err := wire.DecodeEvents(small[:len(small)-3], &f); err == nil || len(f.Events) != 0 {
		t.Fatalf("truncated decode: err %v, %d events left", err, len(f.Events))
	}
}

// TestDecodedKeysOwnTheirBytes: keys are copied out of the body (all of a
// frame's into one string), so reusing the receive buffer never changes an
// event a subscriber holds.
func TestDecodedKeysOwnTheirBytes(t *testing.T) {
	f := &wire.Events{Origin: "o", Boot: 1, Events: []wire.Event{
		{Seq: 1, Key: "user:1", Time: 1},
		{Seq: 2, Key: "user:22", Time: 2},
		{Seq: 3, Key: "u", Time: 3},
	}}
	body, err := wire.AppendEvents(nil, f, false)
	if err != nil {
		t.Fatal(err)
	}
	var got wire.Events
	if err := wire.DecodeEvents(body, &got); err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'x'
	}
	for i, ev := range got.Events {
		if ev.Key != f.Events[i].Key {
			t.Fatalf("event %d key %q after the body was overwritten, want %q", i, ev.Key, f.Events[i].Key)
		}
	}
}

// A digest from a node that predates the Relay field (five fields, the
// v1 golden vector before Relay) still decodes, as not relayed.
func TestDigestWithoutRelayField(t *testing.T) {
	body, err := hex.DecodeString("0595a66e6f64652d6105cd04d2cd03e8c3")
	if err != nil {
		t.Fatal(err)
	}
	got := wire.Digest{Relay: true}
	if err := wire.DecodeDigest(body, &got); err != nil {
		t.Fatal(err)
	}
	want := wire.Digest{Origin: "node-a", Boot: 5, Seq: 1234, Start: 1000, Blocked: true}
	if got != want {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
}
