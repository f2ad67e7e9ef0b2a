package mesh_test

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus/bustest"
)

type countTr struct {
	membership.Transport
	to   netip.AddrPort
	sent atomic.Uint64
}

func (c *countTr) SendDatagram(a netip.AddrPort, b []byte) error {
	if a == c.to {
		c.sent.Add(1)
	}
	return c.Transport.SendDatagram(a, b)
}

func TestZZSpurious(t *testing.T) {
	nta, _ := membership.NewNetTransport(membership.NetConfig{BindAddr: "127.0.0.1", BindPort: -1})
	ca := &countTr{Transport: nta}
	ntb, _ := membership.NewNetTransport(membership.NetConfig{BindAddr: "127.0.0.1", BindPort: -1, DatagramQueue: 1 << 16, SocketBuffer: 64 << 20})
	buses := startCluster(t, []bustest.Node{{Name: "a", Zone: "z"}, {Name: "b", Zone: "z"}}, func(i int, o *mesh.MeshOptions) {
		o.PrefixBuffer = 1 << 16
		if i == 0 {
			o.Transport = ca
		} else {
			o.Transport = ntb
		}
	})
	a, b := buses[0], buses[1]
	ca.to = b.Addr()
	var wg sync.WaitGroup
	got := secCollect(t, b, &wg)
	ctx := ctxTimeout(t, 60*time.Second)
	pad := strings.Repeat("x", 300)
	const n = 200000
	for i := range n {
		a.Publish(ctx, fmt.Sprintf("k:%d:%s", i, pad))
	}
	eventually(t, 30*time.Second, "all", func() bool { return got.distinct() >= n })
	time.Sleep(2 * time.Second)
	mb, ma := b.Metrics(), a.Metrics()
	t.Logf("a sent %d dgs to b; b transport %+v", ca.sent.Load(), ntb.Stats())
	t.Logf("b repairs %d dups %d resyncs %d; a retransmits %d batches %d", mb.RepairRequests, mb.Duplicates, got.resyncCount(), ma.Retransmits, ma.Batches)
}
