package wire_test

import (
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/warpmesh/warp/wire"
)

// bytesAllocated returns the heap bytes one call of fn allocates, averaged
// over runs calls.
func bytesAllocated(runs int, fn func()) uint64 {
	fn() // warm pools
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		fn()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// TestHugeClaimsAllocateLittle feeds bodies whose headers claim huge arrays,
// maps and strings backed by a few bytes. Each must fail, and no decode may
// allocate more than a small fixed amount (the error itself).
func TestHugeClaimsAllocateLittle(t *testing.T) {
	ev := byte(wire.FrameEvents)
	hdr := []byte{0x96, 0xa1, 'o', 0x00, 0xa0, 0xa0, 0x00} // [6 fields] "o" 0 "" "" 0
	event := []byte{0x97, 0x01, 0xc4, 0x10}                // [7] seq, bin8 of 16 ...
	event = append(event, make([]byte, 16)...)
	cases := []struct {
		name   string
		decode func([]byte) error
		body   []byte
		want   error
	}{
		{"frame fields", decEvents, cat([]byte{ev, 0xdd}, u32(1<<32-1)), wire.ErrMalformed},
		{"events count", decEvents, cat([]byte{ev}, hdr, []byte{0xdc, 0x10, 0x00}), wire.ErrMalformed},
		{"events count over limit", decEvents, cat([]byte{ev}, hdr, []byte{0xdd}, u32(1<<31)), wire.ErrTooLarge},
		{"key length", decEvents, cat([]byte{ev}, hdr, []byte{0x91}, event, []byte{0xdb}, u32(1<<31), make([]byte, 8)), wire.ErrTooLarge},
		{"key bytes", decEvents, cat([]byte{ev}, hdr, []byte{0x91}, event, []byte{0xda, 0x07, 0xff}, make([]byte, 8)), wire.ErrMalformed},
		{"vector clock", decEvents, cat([]byte{ev}, hdr, []byte{0x91, 0x9b}, event[1:], []byte{0xa1, 'k', 0, 0, 0, 0, 0xc0, 0xc0, 0xc0, 0xdf}, u32(1<<32-1)), wire.ErrTooLarge},
		{"vector clock bytes", decEvents, cat([]byte{ev}, hdr, []byte{0x91, 0x9b}, event[1:], []byte{0xa1, 'k', 0, 0, 0, 0, 0xc0, 0xc0, 0xc0, 0xde, 0x00, 0x30}), wire.ErrMalformed},
		{"unknown field array", decEvents, cat([]byte{ev, 0x97, 0xa1, 'o', 0, 0xa0, 0xa0, 0, 0x90, 0xdd}, u32(1<<32-1)), wire.ErrMalformed},
		{"unknown field nesting", decEvents, cat([]byte{ev, 0x97, 0xa1, 'o', 0, 0xa0, 0xa0, 0, 0x90}, repeat(0x91, 100)), wire.ErrMalformed},
		{"unknown field string", decEvents, cat([]byte{ev, 0x97, 0xa1, 'o', 0, 0xa0, 0xa0, 0, 0x90, 0xdb}, u32(1<<32-1)), wire.ErrMalformed},
		{"ack count", decAcks, cat([]byte{byte(wire.FrameAcks), 0x93, 0xa1, 'o', 0, 0xdd}, u32(1<<32-1)), wire.ErrTooLarge},
		{"ack seqs", decAcks, cat([]byte{byte(wire.FrameAcks), 0x93, 0xa1, 'o', 0, 0x91, 0x92, 0xa1, 'n', 0xdc, 0x1f, 0xff}), wire.ErrMalformed},
		{"ack seqs over limit", decAcks, cat([]byte{byte(wire.FrameAcks), 0x93, 0xa1, 'o', 0, 0x91, 0x92, 0xa1, 'n', 0xdd}, u32(1<<31)), wire.ErrTooLarge},
		{"ranges", decRepair, cat([]byte{byte(wire.FrameRepairRequest), 0x93, 0xa1, 'o', 0, 0xdc, 0x07, 0xfe}), wire.ErrMalformed},
		{"compressed length", decEvents, cat([]byte{ev | 0x80}, binary.AppendUvarint(nil, 1<<40), []byte{0x10, 'a'}), wire.ErrTooLarge},
		{"compressed ratio", decEvents, cat([]byte{ev | 0x80}, binary.AppendUvarint(nil, wire.MaxBodySize), []byte{0x10, 'a'}), wire.ErrMalformed},
	}
	for _, c := range cases {
		err := c.decode(c.body)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
			continue
		}
		if n := bytesAllocated(20, func() { _ = c.decode(c.body) }); n > 1024 {
			t.Errorf("%s: a failing decode allocates %d bytes", c.name, n)
		}
	}
}

func repeat(b byte, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = b
	}
	return p
}

func decEvents(b []byte) error { return wire.DecodeEvents(b, new(wire.Events)) }
func decAcks(b []byte) error   { return wire.DecodeAcks(b, new(wire.Acks)) }
func decRepair(b []byte) error { return wire.DecodeRepairRequest(b, new(wire.RepairRequest)) }

// TestDecodeAllocations pins the steady-state allocations of a receive
// loop: one string per event key, nothing per frame.
func TestDecodeAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	f := sampleEvents(64)
	for _, compress := range []bool{false, true} {
		body, err := wire.AppendEvents(nil, f, compress)
		if err != nil {
			t.Fatal(err)
		}
		var into wire.Events
		allocs := testing.AllocsPerRun(50, func() {
			if err := wire.DecodeEvents(body, &into); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > float64(len(f.Events)) {
			t.Errorf("compress=%v: decoding %d events allocates %v times", compress, len(f.Events), allocs)
		}
	}
	buf := make([]byte, 0, 64<<10)
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := wire.AppendEvents(buf[:0], f, true); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("encoding into a large enough buffer allocates %v times", allocs)
	}
}
