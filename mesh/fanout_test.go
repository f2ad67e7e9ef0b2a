package mesh_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
	"github.com/warpmesh/warp/wire"
)

var nineInThreeZones = []bustest.Node{
	{Name: "a1", Zone: "a"}, {Name: "a2", Zone: "a"}, {Name: "a3", Zone: "a"},
	{Name: "b1", Zone: "b"}, {Name: "b2", Zone: "b"}, {Name: "b3", Zone: "b"},
	{Name: "c1", Zone: "c"}, {Name: "c2", Zone: "c"}, {Name: "c3", Zone: "c"},
}

// TestRelayCrossZoneDatagrams checks the cost of relay mode with no loss:
// per awaited event, one data datagram to each remote zone, and back from
// each remote zone the relay's own ack plus its peers' acks aggregated.
func TestRelayCrossZoneDatagrams(t *testing.T) {
	buses := startCluster(t, nineInThreeZones, func(_ int, o *mesh.MeshOptions) {
		o.Fanout = mesh.FanoutRelay
	})
	if mode := buses[0].Health().Mode; mode != "relay" {
		t.Fatalf("fanout mode %q", mode)
	}
	ctx := ctxTimeout(t, 30*time.Second)
	pub := buses[0]
	before := pub.Metrics()
	const events = 50
	for i := range events {
		var rep syncbus.AckReport
		err := pub.PublishAndAwaitTopology(ctx, fmt.Sprintf("k:%d", i), 3, syncbus.WithZoneQuorum(3), syncbus.WithAckReport(&rep))
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Nodes) != 8 {
			t.Fatalf("event %d acked by %v, want all 8 others", i, rep.Nodes)
		}
	}
	after := pub.Metrics()
	if after.Retransmits != before.Retransmits {
		t.Skipf("retransmissions happened on loopback (%d): the machine is too loaded to count datagrams",
			after.Retransmits-before.Retransmits)
	}
	sent := after.SentRemote.Messages - before.SentRemote.Messages
	if sent != 2*events {
		t.Errorf("publisher sent %d datagrams across zones for %d events, want %d (one per remote zone)", sent, events, 2*events)
	}
	acks := after.ReceivedRemote.Messages - before.ReceivedRemote.Messages
	// Two per zone and event when the relay's peers answer within its
	// aggregation window; a peer answering late adds one now and then.
	if acks < 4*events || acks > 5*events {
		t.Errorf("publisher received %d ack datagrams from 2 remote zones for %d events, want about %d", acks, events, 4*events)
	}
	var relayed uint64
	for _, b := range buses[3:] {
		relayed += b.Metrics().Relayed
	}
	if relayed != 2*events {
		t.Errorf("relays forwarded %d events, want %d", relayed, 2*events)
	}
	t.Logf("%d events: %d data and %d ack datagrams across zones", events, sent, acks)
}

// TestDirectFanout: below the relay threshold every node gets each event
// straight from the publisher.
func TestDirectFanout(t *testing.T) {
	buses := startCluster(t, nineInThreeZones[:5], nil)
	if mode := buses[0].Health().Mode; mode != "direct" {
		t.Fatalf("fanout mode %q with 5 nodes, want direct", mode)
	}
	ctx := ctxTimeout(t, 10*time.Second)
	before := buses[0].Metrics()
	if err := buses[0].PublishAndAwait(ctx, "k", 4); err != nil {
		t.Fatal(err)
	}
	after := buses[0].Metrics()
	if got := after.SentLocal.Messages + after.SentRemote.Messages - before.SentLocal.Messages - before.SentRemote.Messages; got != 4 {
		t.Errorf("sent %d datagrams for one event to 4 nodes, want 4", got)
	}
	for _, b := range buses[1:] {
		if b.Metrics().Relayed != 0 {
			t.Errorf("%s relayed in direct mode", b.Name())
		}
	}
}

// TestEventTooLargeForADatagram: an event that cannot fit one datagram is an
// error at Publish, never a silent drop.
func TestEventTooLargeForADatagram(t *testing.T) {
	buses := startCluster(t, nineInThreeZones[:2], nil)
	ctx := ctxTimeout(t, 10*time.Second)
	huge := strings.Repeat("k", 1500) // within wire.MaxKeyLen, beyond a 1400-byte datagram
	for name, err := range map[string]error{
		"Publish":                 buses[0].Publish(ctx, huge),
		"PublishAndAwait":         buses[0].PublishAndAwait(ctx, huge, 1),
		"PublishAndAwaitTopology": buses[0].PublishAndAwaitTopology(ctx, huge, 1),
		"RevokeLease":             buses[0].RevokeLease(ctx, huge),
	} {
		if !errors.Is(err, wire.ErrTooLarge) {
			t.Errorf("%s of a 1500-byte key: %v, want wire.ErrTooLarge", name, err)
		}
	}
	vc := map[string]uint64{}
	for i := range 60 {
		vc[fmt.Sprintf("node-with-a-long-name-%02d", i)] = uint64(i)
	}
	if err := buses[0].Publish(ctx, "k", syncbus.WithVectorClock(vc)); !errors.Is(err, wire.ErrTooLarge) {
		t.Errorf("Publish with a 60-entry vector clock of long names: %v, want wire.ErrTooLarge", err)
	}
	if err := buses[0].PublishAndAwait(ctx, strings.Repeat("k", 1200), 1); err != nil {
		t.Errorf("a 1200-byte key fits: %v", err)
	}
	if m := buses[0].Metrics(); m.PublishErrors != 5 {
		t.Errorf("PublishErrors = %d, want 5", m.PublishErrors)
	}
}

// TestRestartIsANewIncarnation: a node restarted under the same name, on
// another port, numbers its events from 1 again; the others take them as a
// new incarnation's, not as replays or duplicates.
func TestRestartIsANewIncarnation(t *testing.T) {
	buses := startCluster(t, nineInThreeZones[:3], nil)
	ctx := ctxTimeout(t, 30*time.Second)
	sub, err := buses[0].Subscribe(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := buses[2].PublishAndAwait(ctx, "k", 2, syncbus.WithVectorClock(map[string]uint64{"i": uint64(i)})); err != nil {
			t.Fatal(err)
		}
		recv(t, sub, 5*time.Second)
	}
	oldAddr := buses[2].Addr()
	if err := buses[2].Close(); err != nil {
		t.Fatal(err)
	}
	warptest.Eventually(t, 10*time.Second, func() bool {
		return memberState(buses[0], "a3") == syncbus.MemberLeft
	}, "%s", "a3 to be seen leaving")
	again := joinNode(t, nineInThreeZones[2], buses[0], nil)
	if again.Addr() == oldAddr {
		t.Fatal("restarted on the same address; the test wants another port")
	}
	waitConverged(t, []*mesh.MeshBus{buses[0], buses[1], again}, 3)
	for i := range 3 {
		if err := again.PublishAndAwait(ctx, "k", 2, syncbus.WithVectorClock(map[string]uint64{"again": uint64(i)})); err != nil {
			t.Fatalf("restarted node's event %d: %v", i, err)
		}
		ev := recv(t, sub, 5*time.Second)
		if ev.Origin != "a3" || ev.VectorClock["again"] != uint64(i) {
			t.Fatalf("got %+v", ev)
		}
	}
	if d := buses[0].Metrics().DropsByReason["replay"]; d != 0 {
		t.Errorf("%d frames of the new incarnation taken for replays", d)
	}
}
