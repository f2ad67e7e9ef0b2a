package wire_test

import (
	"fmt"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/warpmesh/warp/wire"
)

// Run: go test ./wire -run '^$' -bench . -benchmem -count 6
// Custom metrics: ns/event, B/event (bytes of body or datagram per event).

var batchSizes = []int{1, 64, 1024}

func BenchmarkEncodeEvents(b *testing.B) {
	for _, n := range batchSizes {
		for _, compress := range []bool{false, true} {
			b.Run(fmt.Sprintf("n=%d/lz4=%v", n, compress), func(b *testing.B) {
				f := sampleEvents(n)
				buf := make([]byte, 0, 256<<10)
				var body []byte
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if body, err = wire.AppendEvents(buf[:0], f, compress); err != nil {
						b.Fatal(err)
					}
				}
				reportPerEvent(b, n, len(body))
			})
		}
	}
}

func BenchmarkDecodeEvents(b *testing.B) {
	for _, n := range batchSizes {
		for _, compress := range []bool{false, true} {
			b.Run(fmt.Sprintf("n=%d/lz4=%v", n, compress), func(b *testing.B) {
				body, err := wire.AppendEvents(nil, sampleEvents(n), compress)
				if err != nil {
					b.Fatal(err)
				}
				var f wire.Events
				b.ReportAllocs()
				for b.Loop() {
					if err := wire.DecodeEvents(body, &f); err != nil {
						b.Fatal(err)
					}
				}
				reportPerEvent(b, n, len(body))
			})
		}
	}
}

func reportPerEvent(b *testing.B, n, size int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
	b.ReportMetric(float64(size)/float64(n), "B/event")
}

// BenchmarkBuilder is the mesh's batching path: add events one by one to
// datagram-sized frames and finish each (compressing when it pays).
func BenchmarkBuilder(b *testing.B) {
	for _, n := range []int{64, 1024} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			f := sampleEvents(n)
			var bld wire.EventsBuilder
			out := make([]byte, 0, 2048)
			var frames, wireBytes int
			b.ReportAllocs()
			for b.Loop() {
				frames, wireBytes = 0, 0
				if err := bld.Reset(f, wire.DefaultDatagramBudget); err != nil {
					b.Fatal(err)
				}
				for i := range f.Events {
					ok, err := bld.Append(&f.Events[i])
					if err != nil {
						b.Fatal(err)
					}
					if !ok {
						out = bld.Finish(out[:0])
						frames++
						wireBytes += len(out) + wire.MaxOverhead
						_ = bld.Reset(f, wire.DefaultDatagramBudget)
						_, _ = bld.Append(&f.Events[i])
					}
				}
				out = bld.Finish(out[:0])
				frames++
				wireBytes += len(out) + wire.MaxOverhead
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
			b.ReportMetric(float64(wireBytes)/float64(n), "B/event")
			b.ReportMetric(float64(frames), "datagrams")
		})
	}
}

func BenchmarkSplit1024(b *testing.B) {
	f := sampleEvents(1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Split(f, wire.DefaultDatagramBudget); err != nil {
			b.Fatal(err)
		}
	}
}

// datagramBody is the largest body that seals into a 1400-byte datagram.
func datagramBody() []byte {
	body := make([]byte, wire.DefaultDatagramBudget-wire.MaxOverhead)
	for i := range body {
		body[i] = byte(i)
	}
	return body
}

func BenchmarkSeal1400(b *testing.B) {
	for _, mode := range []string{"sealed", "clear"} {
		b.Run(mode, func(b *testing.B) {
			kr := benchKeyring(b, mode)
			s := wire.NewSealer(kr, "bench")
			body := datagramBody()
			out := make([]byte, 0, 2048)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if out, err = s.Seal(out[:0], body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen1400(b *testing.B) {
	for _, mode := range []string{"sealed", "clear"} {
		b.Run(mode, func(b *testing.B) {
			kr := benchKeyring(b, mode)
			s := wire.NewSealer(kr, "bench")
			body := datagramBody()
			// Frames open once each: cycle through a window-sized set with a
			// fresh Opener per cycle.
			const set = 512
			datagrams := make([][]byte, set)
			for i := range datagrams {
				d, err := s.Seal(nil, body)
				if err != nil {
					b.Fatal(err)
				}
				datagrams[i] = d
			}
			out := make([]byte, 0, 2048)
			o := wire.NewOpener(kr, "bench")
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == set {
					b.StopTimer()
					o, i = wire.NewOpener(kr, "bench"), 0
					b.StartTimer()
				}
				var err error
				if out, _, err = o.Open(out[:0], datagrams[i]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func benchKeyring(b *testing.B, mode string) *wire.Keyring {
	if mode == "clear" {
		return nil
	}
	kr, err := wire.NewKeyring(goldenKey(32))
	if err != nil {
		b.Fatal(err)
	}
	return kr
}

// msgpackEvent is an event-sized struct decoded the generic way, for
// comparison with the hand-written codec.
type msgpackEvent struct {
	Seq    uint64            `msgpack:"s"`
	ID     []byte            `msgpack:"i"`
	Key    string            `msgpack:"k"`
	Op     uint8             `msgpack:"o"`
	Scope  uint8             `msgpack:"c"`
	Flags  uint8             `msgpack:"f"`
	Origin string            `msgpack:"g"`
	Zone   string            `msgpack:"z"`
	Region string            `msgpack:"r"`
	VC     map[string]uint64 `msgpack:"v"`
	Time   int64             `msgpack:"t"`
}

func BenchmarkMsgpackReflectEvent(b *testing.B) {
	ev := sampleEvents(1).Events[0]
	in := msgpackEvent{Seq: ev.Seq, ID: ev.ID[:], Key: ev.Key, Origin: "node-eu-west-1a-07", Zone: "eu-west-1a", Region: "eu-west-1", Time: ev.Time}
	data, err := msgpack.Marshal(&in)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := msgpack.Marshal(&in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out msgpackEvent
			if err := msgpack.Unmarshal(data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
