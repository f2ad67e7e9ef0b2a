package protocol

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// BenchmarkReceiveManyOrigins: one receiver of a large cluster, which has
// heard every node once, while 16 of them publish — each step one of the
// 16 origins' next event arrives, 1ms after the last — and the receiver's
// timers run as the mesh's loop runs them. What a step costs should not
// grow with the number of nodes the receiver once heard: at 1000 nodes in
// a simulation, tickCredit's walk of every window on every credit poll
// was half the CPU.
func BenchmarkReceiveManyOrigins(b *testing.B) {
	for _, n := range []int{16, 100, 1000} {
		b.Run(fmt.Sprintf("origins=%d", n), func(b *testing.B) {
			now := time.Unix(1_000_000, 0)
			r, err := New(Config{Name: "r", Zone: "a", Boot: 1})
			if err != nil {
				b.Fatal(err)
			}
			members := make([]Member, n)
			for i := range members {
				members[i] = Member{
					Name: fmt.Sprintf("o%d", i), Zone: "a", Boot: 1, State: syncbus.MemberAlive, Started: now.Add(-time.Hour),
					Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 7946),
				}
			}
			if err := r.SetMembers(now, members); err != nil {
				b.Fatal(err)
			}
			seqs := make([]uint64, n)
			var eb wire.EventsBuilder
			var body []byte
			send := func(i int) {
				m := &members[i]
				seqs[i]++
				hdr := wire.Events{Origin: m.Name, Boot: 1, Zone: "a"}
				_ = eb.Reset(&hdr, wire.MaxDatagramSize)
				id := syncbus.EventID{1}
				binary.LittleEndian.PutUint64(id[8:], uint64(i)<<32|seqs[i])
				if _, err := eb.Append(&wire.Event{Seq: seqs[i], ID: id, Key: "user:1", Time: now.UnixNano()}); err != nil {
					b.Fatal(err)
				}
				body = eb.Finish(body[:0])
				r.SetRoom(1024)
				if _, err := r.Step(now, m.Addr, body); err != nil {
					b.Fatal(err)
				}
				for next := r.NextTick(); !next.IsZero() && !now.Before(next); next = r.NextTick() {
					r.Tick(now)
				}
				r.Advance()
			}
			for i := range n { // every node heard once, long ago
				send(i)
			}
			now = now.Add(10 * time.Second)
			const publishers = 16
			step := func(i int) {
				now = now.Add(time.Millisecond)
				send(i % publishers)
			}
			for i := range 1000 {
				step(i)
			}
			b.ResetTimer()
			for i := range b.N {
				step(i)
			}
		})
	}
}
