package mesh_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/faults"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/internal/warptest/nettest"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
	"github.com/warpmesh/warp/wire"
)

// joinNode starts one more node that joins the cluster of seed, with the
// options startCluster uses; it does not wait for convergence.
func joinNode(t testing.TB, n bustest.Node, seed *mesh.MeshBus, tune func(o *mesh.MeshOptions)) *mesh.MeshBus {
	t.Helper()
	o := testOptions(n)
	o.Peers = []string{seed.Addr().String()}
	if tune != nil {
		tune(&o)
	}
	b, err := mesh.NewMeshBus(o)
	if err != nil {
		t.Fatalf("node %s: %v", n.Name, err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// testOptions are the options of the test nodes: loopback, a port chosen
// by the system, short membership timings, a key and a label.
func testOptions(n bustest.Node) mesh.MeshOptions {
	o := mesh.MeshOptions{
		NodeName: n.Name,
		BindAddr: "127.0.0.1",
		Port:     -1,
		Zone:     n.Zone,
		Region:   n.Region,
		Profile:  "local",
		Label:    "test",
		SecretKeys: [][]byte{
			[]byte("0123456789abcdef0123456789abcdef"),
		},
	}
	mesh.FastMembership(&o)
	return o
}

// startCluster starts one MeshBus per node on 127.0.0.1 with ports chosen
// by the system, all joining the first, and waits until every node sees
// every other one alive. tune may change each node's options.
func startCluster(t testing.TB, nodes []bustest.Node, tune func(i int, o *mesh.MeshOptions)) []*mesh.MeshBus {
	t.Helper()
	buses := make([]*mesh.MeshBus, 0, len(nodes))
	t.Cleanup(func() {
		for _, b := range buses {
			_ = b.Close()
		}
	})
	for i, n := range nodes {
		o := testOptions(n)
		if i > 0 {
			o.Peers = []string{buses[0].Addr().String()}
		}
		if tune != nil {
			tune(i, &o)
		}
		b, err := mesh.NewMeshBus(o)
		if err != nil {
			t.Fatalf("node %s: %v", n.Name, err)
		}
		buses = append(buses, b)
	}
	waitConverged(t, buses, len(nodes))
	return buses
}

// waitConverged waits until every bus sees n alive members.
func waitConverged(t testing.TB, buses []*mesh.MeshBus, n int) {
	t.Helper()
	warptest.Eventually(t, 15*time.Second, func() bool {
		for _, b := range buses {
			alive := 0
			for _, m := range b.Members() {
				if m.State.Alive() {
					alive++
				}
			}
			if alive != n {
				return false
			}
		}
		return true
	}, "%d nodes to see each other", n)
}

// recv waits for one event on ch.
func recv(t testing.TB, ch <-chan syncbus.Event, timeout time.Duration) syncbus.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event within %v", timeout)
	}
	return syncbus.Event{}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// testKeyring holds the key every test node has.
func testKeyring(t testing.TB) *wire.Keyring {
	t.Helper()
	kr, err := wire.NewKeyring(secClusterKey)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// faultyTransport binds a node's real transport on loopback behind the
// test kit's fault rules (which see the cluster's frames by kind).
func faultyTransport(t testing.TB, rules *faults.Rules) *nettest.Transport {
	t.Helper()
	tr, err := nettest.Listen(rules, testKeyring(t), secLabel)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// withTransports gives node i the transport trs[i] (nil keeps the default).
func withTransports(trs []*nettest.Transport, also func(i int, o *mesh.MeshOptions)) func(int, *mesh.MeshOptions) {
	return func(i int, o *mesh.MeshOptions) {
		if trs[i] != nil {
			o.Transport = trs[i]
		}
		if also != nil {
			also(i, o)
		}
	}
}

// dataFrom matches the data frames one node sends (to the given nodes,
// or to anyone).
func dataFrom(from netip.AddrPort, to ...netip.AddrPort) faults.Match {
	m := faults.Data()
	m.From, m.To = []netip.AddrPort{from}, to
	return m
}

// collect subscribes to every key of b and records what arrives, until
// the bus closes; wg, if given, counts the reading goroutine's life.
func collect(t testing.TB, b *mesh.MeshBus, wg *sync.WaitGroup) *warptest.Collector {
	t.Helper()
	ch, err := b.SubscribePrefix(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	c := warptest.Collect(ch)
	if wg != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-c.Done()
		}()
	}
	return c
}
