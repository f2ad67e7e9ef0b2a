package mesh_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// TestLopsidedJoinLosesNothingSilently: a newcomer c knows the publisher a
// at once, but a's view lacks c for a while (gossip missed it: it took up
// to 85s in a cluster of 50). Meanwhile a publishes, and sends c nothing.
// When a learns of c, it owes c everything it published since c started
// — c's metadata says when — not since it heard of c: its digest tells c
// where to start, and c repairs what it missed. Afterwards c has every
// event or a resync: never neither.
func TestLopsidedJoinLosesNothingSilently(t *testing.T) {
	nodes := []bustest.Node{{Name: "a", Zone: "z1"}, {Name: "b", Zone: "z1"}}
	buses := startCluster(t, nodes, nil)
	a, b := buses[0], buses[1]
	a.SetHidden(func(name string) bool { return name == "c" })
	c := joinNode(t, bustest.Node{Name: "c", Zone: "z2"}, a, nil)
	got := collect(t, c, nil)
	warptest.Eventually(t, 15*time.Second, func() bool {
		return countAlive(c.Members()) == 3 && countAlive(b.Members()) == 3 && countAlive(a.Members()) == 3
	}, "every membership to know the three nodes")
	ctx := ctxTimeout(t, 30*time.Second)
	const events = 100
	for i := range events {
		if err := a.Publish(ctx, fmt.Sprintf("lop:%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.PublishAndAwait(ctx, "lop:b-has-it", 1); err != nil {
		t.Fatal(err)
	}
	if n := got.Distinct(); n != 0 {
		t.Fatalf("c got %d events from a node that did not know it", n)
	}
	a.SetHidden(nil)
	warptest.Eventually(t, 10*time.Second, func() bool { return got.Distinct() >= events || got.Resyncs() > 0 },
		"c to get the events a published before it knew c, or a resync")
	if r := got.Resyncs(); r != 0 {
		t.Errorf("%d resyncs, though a's repair ring held everything", r)
	}
	t.Logf("c got %d distinct events (repair requests %d), %d resyncs", got.Distinct(), c.Metrics().RepairRequests, got.Resyncs())
}
