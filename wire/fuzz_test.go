package wire_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/warpmesh/warp/wire"
)

// The fuzz targets hold every decoder to two properties: no input makes it
// panic (or fail with an error outside the package's set), and whatever it
// accepts re-encodes, plain and compressed, to bytes that decode to the same
// value — and re-encode to the same bytes again. Seeds: the golden vectors
// (testdata/fuzz, written by TestGolden -update) and the round-trip frames
// added below.

// fuzzDecoder runs the round-trip property for one frame type.
func fuzzDecoder[T any](f *testing.F, seeds []*T,
	enc func([]byte, *T, bool) ([]byte, error), dec func([]byte, *T) error, norm func(*T) *T) {
	for _, s := range seeds {
		for _, c := range []bool{false, true} {
			b, err := enc(nil, s, c)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v T
		if err := dec(body, &v); err != nil {
			if !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrTooLarge) {
				t.Fatalf("decode failed outside the error set: %v", err)
			}
			return
		}
		for _, compress := range []bool{false, true} {
			again, err := enc(nil, &v, compress)
			if err != nil {
				t.Fatalf("decoded value %+v does not re-encode: %v", v, err)
			}
			var w T
			if err := dec(again, &w); err != nil {
				t.Fatalf("re-encoded value does not decode: %v", err)
			}
			if !reflect.DeepEqual(norm(&v), norm(&w)) {
				t.Fatalf("round trip changed the value\nfirst  %+v\nsecond %+v", v, w)
			}
			third, err := enc(nil, &w, compress)
			if err != nil || !bytes.Equal(third, again) {
				t.Fatalf("re-encoding is not stable (%v)\n%x\n%x", err, again, third)
			}
		}
	})
}

func same[T any](v *T) *T { return v }

func FuzzDecodeEvents(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	seeds := []*wire.Events{sampleEvents(1), sampleEvents(20), goldenEventsFull(), {Origin: "o"}}
	for range 4 {
		seeds = append(seeds, randEvents(r, r.IntN(6)))
	}
	fuzzDecoder(f, seeds, wire.AppendEvents, wire.DecodeEvents, normEvents)
}

func FuzzDecodeAcks(f *testing.F) {
	seeds := []*wire.Acks{
		{Origin: "o", Boot: 1, Acks: []wire.Ack{{Node: "a", Seqs: []uint64{1, 2, 3}}, {Node: "b", Seqs: []uint64{9, 1 << 60}}}},
		{Origin: "o"},
	}
	fuzzDecoder(f, seeds, wire.AppendAcks, wire.DecodeAcks, normAcks)
}

func FuzzDecodeRepairRequest(f *testing.F) {
	seeds := []*wire.RepairRequest{{Origin: "o", Boot: 3, Ranges: []wire.SeqRange{{1, 2}, {7, 1 << 40}}}, {Origin: "p"}}
	fuzzDecoder(f, seeds, wire.AppendRepairRequest, wire.DecodeRepairRequest, func(v *wire.RepairRequest) *wire.RepairRequest {
		c := *v
		c.Ranges = normRanges(c.Ranges)
		return &c
	})
}

func FuzzDecodeUnavailable(f *testing.F) {
	seeds := []*wire.Unavailable{{Origin: "o", Boot: 3, Ranges: []wire.SeqRange{{5, 5}}}}
	fuzzDecoder(f, seeds, wire.AppendUnavailable, wire.DecodeUnavailable, func(v *wire.Unavailable) *wire.Unavailable {
		c := *v
		c.Ranges = normRanges(c.Ranges)
		return &c
	})
}

func FuzzDecodeDigest(f *testing.F) {
	fuzzDecoder(f, []*wire.Digest{{Origin: "o", Boot: 1, Seq: 77, Start: 7}}, wire.AppendDigest, wire.DecodeDigest, same)
}

func FuzzDecodePresence(f *testing.F) {
	seeds := []*wire.Presence{{Node: "n", Zone: "z", Region: "r", Boot: 1, Interval: time.Second, Leaving: true}}
	fuzzDecoder(f, seeds, wire.AppendPresence, wire.DecodePresence, same)
}

func FuzzDecodeCredit(f *testing.F) {
	seeds := []*wire.Credit{{Origin: "o", Boot: 1, Node: "n", NodeBoot: 2, Limit: 4096}}
	fuzzDecoder(f, seeds, wire.AppendCredit, wire.DecodeCredit, same)
}

func FuzzDecodeAnnounce(f *testing.F) {
	seeds := []*wire.Announce{
		{Node: "n", Addr: netip.MustParseAddrPort("192.0.2.1:7946"), Zone: "z"},
		{Node: "n6", Addr: netip.MustParseAddrPort("[2001:db8::1]:1")},
		{Node: "m", Addr: netip.MustParseAddrPort("[::ffff:192.0.2.9]:65535"), Zone: "z"},
	}
	fuzzDecoder(f, seeds, wire.AppendAnnounce, wire.DecodeAnnounce, same)
}

// FuzzOpen feeds datagrams to openers with each golden key and with none.
// What opens must be exactly what a Sealer with the reported sender and
// counter makes of the body, and the body goes on to the frame decoders.
func FuzzOpen(f *testing.F) {
	rings := map[string]*wire.Keyring{"clear": nil}
	for _, n := range []int{16, 24, 32} {
		kr, err := wire.NewKeyring(goldenKey(n))
		if err != nil {
			f.Fatal(err)
		}
		rings[string(rune('0'+n))] = kr
	}
	for _, kr := range rings {
		s := wire.NewSealerAt(kr, goldenLabel, goldenSender, 3)
		for _, body := range [][]byte{nil, []byte("x"), mustBody(f)} {
			d, err := s.Seal(nil, body)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(d)
		}
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		for _, kr := range rings {
			body, h, err := wire.NewOpener(kr, goldenLabel).Open(nil, d)
			if err != nil {
				if wire.Reason(err) == "malformed" && !errors.Is(err, wire.ErrMalformed) {
					t.Fatalf("open failed outside the error set: %v", err)
				}
				continue
			}
			again, err := wire.NewSealerAt(kr, goldenLabel, h.Sender, h.Counter).Seal(nil, body)
			if err != nil || !bytes.Equal(again, d) {
				t.Fatalf("resealing the opened body gives other bytes (%v)\n%x\n%x", err, d, again)
			}
			decodeAny(t, body)
		}
	})
}

func mustBody(f *testing.F) []byte {
	b, err := wire.AppendEvents(nil, sampleEvents(3), false)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// decodeAny decodes a body by its type; failures must be of the error set.
func decodeAny(t *testing.T, body []byte) {
	typ, err := wire.PeekType(body)
	if err != nil {
		return
	}
	switch typ {
	case wire.FrameEvents:
		err = wire.DecodeEvents(body, new(wire.Events))
	case wire.FrameAcks:
		err = wire.DecodeAcks(body, new(wire.Acks))
	case wire.FrameRepairRequest:
		err = wire.DecodeRepairRequest(body, new(wire.RepairRequest))
	case wire.FrameUnavailable:
		err = wire.DecodeUnavailable(body, new(wire.Unavailable))
	case wire.FrameDigest:
		err = wire.DecodeDigest(body, new(wire.Digest))
	case wire.FramePresence:
		err = wire.DecodePresence(body, new(wire.Presence))
	case wire.FrameCredit:
		err = wire.DecodeCredit(body, new(wire.Credit))
	case wire.FrameAnnounce:
		err = wire.DecodeAnnounce(body, new(wire.Announce))
	}
	if err != nil && !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("decode failed outside the error set: %v", err)
	}
}
