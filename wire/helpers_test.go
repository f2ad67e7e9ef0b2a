package wire_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"go.uber.org/goleak"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sampleEvents returns a frame of n events shaped like real traffic: keys
// like user:123456:profile, consecutive sequence numbers, close times.
func sampleEvents(n int) *wire.Events {
	f := &wire.Events{Origin: "node-eu-west-1a-07", Boot: 0x5eed_cafe_f00d_0001, Zone: "eu-west-1a", Region: "eu-west-1"}
	gen := syncbus.NewIDGenerator()
	base := int64(1_750_000_000_000_000_000)
	for i := range n {
		f.Events = append(f.Events, wire.Event{
			Seq:   uint64(1000 + i),
			ID:    gen.Next(),
			Key:   fmt.Sprintf("user:%06d:profile", 123456+i*7),
			Op:    syncbus.OpInvalidate,
			Flags: wire.EventAckWanted,
			Time:  base + int64(i)*1500,
		})
	}
	return f
}

// randName returns a name of up to max bytes, empty only when allowEmpty.
func randName(r *rand.Rand, max int, allowEmpty bool) string {
	n := r.IntN(max + 1)
	if !allowEmpty && n == 0 {
		n = 1
	}
	if r.IntN(4) == 0 && allowEmpty {
		return ""
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return string(b)
}

// randUint returns values of every msgpack width, edges included.
func randUint(r *rand.Rand) uint64 {
	switch r.IntN(6) {
	case 0:
		return uint64(r.IntN(128))
	case 1:
		return r.Uint64()
	case 2:
		return [...]uint64{0, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<63 - 1, 1 << 63, 1<<64 - 1}[r.IntN(12)]
	default:
		return uint64(r.Uint32())
	}
}

func randEvent(r *rand.Rand) wire.Event {
	ev := wire.Event{
		Seq:   randUint(r),
		Key:   randName(r, 64, false),
		Op:    syncbus.Op(r.IntN(3)),
		Scope: syncbus.Scope(r.IntN(2)),
		Flags: uint8(r.UintN(256)),
		Time:  int64(randUint(r)),
	}
	if r.IntN(20) == 0 {
		ev.Key = randName(r, wire.MaxKeyLen, false)
	}
	for i := range ev.ID {
		ev.ID[i] = byte(r.UintN(256))
	}
	if r.IntN(3) == 0 {
		ev.Origin = randName(r, 20, true)
		ev.Zone = randName(r, 20, true)
		ev.Region = randName(r, 20, true)
	}
	if r.IntN(3) == 0 {
		n := r.IntN(wire.MaxVectorClock + 1)
		ev.VectorClock = make(map[string]uint64, n)
		for range n {
			ev.VectorClock[randName(r, 12, false)] = randUint(r)
		}
	}
	return ev
}

func randEvents(r *rand.Rand, n int) *wire.Events {
	f := &wire.Events{
		Origin: randName(r, wire.MaxNameLen, false),
		Boot:   randUint(r),
		Zone:   randName(r, 30, true),
		Region: randName(r, 30, true),
		Flags:  uint8(r.UintN(256)),
	}
	for range n {
		f.Events = append(f.Events, randEvent(r))
	}
	return f
}

func randSeqs(r *rand.Rand, n int) []uint64 {
	s := make([]uint64, n)
	v := randUint(r)
	for i := range s {
		if r.IntN(4) == 0 {
			v = randUint(r)
		} else {
			v++
		}
		s[i] = v
	}
	return s
}

func randRanges(r *rand.Rand, n int) []wire.SeqRange {
	rs := make([]wire.SeqRange, n)
	for i := range rs {
		a, b := randUint(r), randUint(r)
		rs[i] = wire.SeqRange{From: min(a, b), To: max(a, b)}
	}
	return rs
}

// normEvents makes nil and empty collections compare equal, as they travel
// the same way on the wire.
func normEvents(f *wire.Events) *wire.Events {
	c := *f
	c.Events = nil
	for _, ev := range f.Events {
		if len(ev.VectorClock) == 0 {
			ev.VectorClock = nil
		}
		c.Events = append(c.Events, ev)
	}
	return &c
}

func normAcks(f *wire.Acks) *wire.Acks {
	c := *f
	c.Acks = nil
	for _, a := range f.Acks {
		if len(a.Seqs) == 0 {
			a.Seqs = nil
		}
		c.Acks = append(c.Acks, a)
	}
	return &c
}

func normRanges(rs []wire.SeqRange) []wire.SeqRange {
	if len(rs) == 0 {
		return nil
	}
	return rs
}
