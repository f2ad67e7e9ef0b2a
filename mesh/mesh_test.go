package mesh_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
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

func TestWaitForMembers(t *testing.T) {
	buses := startCluster(t, []bustest.Node{{Name: "a1", Zone: "a"}, {Name: "b1", Zone: "b"}}, nil)
	if err := buses[0].WaitForMembers(ctxTimeout(t, 5*time.Second), 2); err != nil {
		t.Fatalf("two members known: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := buses[0].WaitForMembers(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for a third member that never comes: %v", err)
	}
	_ = buses[1].Close()
	if err := buses[1].WaitForMembers(context.Background(), 1); !errors.Is(err, syncbus.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestHealth(t *testing.T) {
	buses := startCluster(t, []bustest.Node{{Name: "a1", Zone: "a"}, {Name: "a2", Zone: "a"}, {Name: "b1", Zone: "b"}}, nil)
	h := buses[0].Health()
	if h.Name != "a1" || h.Zone != "a" || h.Alive != 3 || h.Zones != 2 || h.Mode != "direct" || !h.Authenticated || h.Closed {
		t.Fatalf("health %+v", h)
	}
	_ = buses[2].Close()
	warptest.Eventually(t, 10*time.Second, func() bool {
		h := buses[0].Health()
		return h.Alive == 2 && h.Left == 1 && h.Zones == 1
	}, "%s", "b1 to be seen leaving")
	_ = buses[0].Close()
	if !buses[0].Health().Closed {
		t.Fatal("Health after Close does not say closed")
	}
}
