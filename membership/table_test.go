package membership

import (
	"net/netip"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// TestEventsFollowTheirSnapshot: the loop hands the reader an event only
// once the snapshot showing its change is published, so a reader that
// reads Snapshot (or Members) on an event finds the change in it. Events
// used to leave first: a reader preempted at the wrong moment counted a
// member short, and never learned better if no event followed.
func TestEventsFollowTheirSnapshot(t *testing.T) {
	m := &Membership{
		members: map[string]Node{},
		events:  make(chan Event, 4),
		changed: make(chan struct{}, 1),
		local:   Node{Name: "self", State: syncbus.MemberAlive},
	}
	m.publish()
	meta := appendMeta(nil, nodeMeta{Zone: "b", Boot: 1, Proto: ProtocolVersion})
	join := note{kind: noteJoin, name: "peer", addr: netip.MustParseAddrPort("127.0.0.1:7946"), meta: meta}
	if !m.applyAlive(join, time.Now()) {
		t.Fatal("a join changed nothing")
	}
	if n := len(m.events); n != 0 {
		t.Fatalf("%d events handed over before the snapshot showing them", n)
	}
	m.publish()
	select {
	case ev := <-m.events:
		if ev.Kind != EventJoin || ev.Node.Name != "peer" {
			t.Fatalf("event %+v, want the join of peer", ev)
		}
		if n, ok := m.Snapshot().Lookup("peer"); !ok || n.State != syncbus.MemberAlive {
			t.Fatalf("on the join event the snapshot holds peer: %v, %+v", ok, n)
		}
	default:
		t.Fatal("no event once the snapshot was published")
	}

	if !m.applyDown(note{kind: noteLeave, name: "peer"}, time.Now()) {
		t.Fatal("a departure changed nothing")
	}
	if n := len(m.events); n != 0 {
		t.Fatalf("%d events handed over before the snapshot showing them", n)
	}
	m.publish()
	if ev := <-m.events; ev.Kind != EventFailed {
		t.Fatalf("event %+v, want peer failed", ev)
	}
	if n, _ := m.Snapshot().Lookup("peer"); n.State != syncbus.MemberFailed {
		t.Fatalf("on the failed event the snapshot shows peer %v", n.State)
	}
}
