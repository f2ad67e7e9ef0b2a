package membership

import (
	"fmt"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// BenchmarkNetTransportDatagram measures one data-plane datagram sent,
// received and released on loopback; the receive path reuses pooled
// buffers, so it should not allocate.
func BenchmarkNetTransportDatagram(b *testing.B) {
	a := newTestTransport(b, nil)
	r := newTestTransport(b, nil)
	frame := make([]byte, 1200)
	frame[0] = wire.Marker
	lost := time.NewTimer(time.Hour)
	defer lost.Stop()
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := a.SendDatagram(r.Addr(), frame); err != nil {
			b.Fatal(err)
		}
		lost.Reset(5 * time.Second)
		select {
		case d := <-r.Datagrams():
			d.Release()
		case <-lost.C:
			b.Fatal("datagram lost on loopback")
		}
	}
}

func BenchmarkSnapshotLookup(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := &Snapshot{Nodes: make([]Node, n)}
			for i := range s.Nodes {
				s.Nodes[i] = Node{Name: fmt.Sprintf("node-%06d", i), State: syncbus.MemberAlive}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := s.Lookup("node-000007"); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
}

func BenchmarkDecodeMeta(b *testing.B) {
	meta := appendMeta(nil, nodeMeta{Zone: "eu-west-1a", Region: "eu-west-1", Boot: 1, Proto: ProtocolVersion})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeMeta(meta); err != nil {
			b.Fatal(err)
		}
	}
}
