package mesh_test

import (
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

func TestThreeZonesDeliverAndAwait(t *testing.T) {
	nodes := []bustest.Node{{Name: "a1", Zone: "a"}, {Name: "a2", Zone: "a"}, {Name: "b1", Zone: "b"}, {Name: "c1", Zone: "c"}}
	buses := startCluster(t, nodes, nil)
	ctx := ctxTimeout(t, 10*time.Second)
	subs := make([]<-chan syncbus.Event, len(buses))
	for i, b := range buses {
		ch, err := b.Subscribe(ctx, "user:1")
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = ch
	}
	if err := buses[0].Publish(ctx, "user:1"); err != nil {
		t.Fatal(err)
	}
	for i, ch := range subs {
		ev := recv(t, ch, 5*time.Second)
		if ev.Key != "user:1" || ev.Origin != "a1" || ev.Zone != "a" {
			t.Fatalf("node %d got %+v", i, ev)
		}
	}
	if err := buses[0].PublishAndAwait(ctx, "user:1", 3); err != nil {
		t.Fatal(err)
	}
	if err := buses[0].PublishAndAwaitTopology(ctx, "user:1", 3); err != nil {
		t.Fatal(err)
	}
}
