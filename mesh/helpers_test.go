package mesh_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// eventually waits until cond holds, failing the test at the deadline.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !waitFor(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// waitFor polls cond until it holds or timeout passes, and reports which.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
	return true
}

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
	eventually(t, 15*time.Second, fmt.Sprintf("%d nodes to see each other", n), func() bool {
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
	})
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
