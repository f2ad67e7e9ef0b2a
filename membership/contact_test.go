package membership

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// Two nodes that no gossip connects — neither has the other as a seed —
// meet when one is asked to contact the other, as the mesh asks when a
// node it does not list sends it frames.
func TestContactExchangesStateWithANodeGossipMissed(t *testing.T) {
	a := startNode(t, testConfig("contact-a"))
	b := startNode(t, testConfig("contact-b"))
	if len(a.Snapshot().Alive()) != 1 || len(b.Snapshot().Alive()) != 1 {
		t.Fatalf("the nodes know each other before any contact:\n%s", describe([]*Membership{a, b}))
	}

	a.Contact(b.Local().Addr)

	waitConverged(t, []*Membership{a, b}, 10*time.Second)
	if got := a.Stats().Contacted; got != 1 {
		t.Errorf("Stats().Contacted = %d, want 1", got)
	}
	// Asking for oneself, or for nothing, is a no-op.
	a.Contact(a.Local().Addr)
	a.Contact(netip.AddrPort{})
	if got := a.contacts.pending; len(got) != 0 {
		t.Errorf("pending contacts after no-op requests: %v", got)
	}
}

func TestContactAfterCloseIsANoOp(t *testing.T) {
	a := startNode(t, testConfig("contact-closed"))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a.Contact(netip.MustParseAddrPort("127.0.0.1:9"))
	if got := a.Stats().Contacted; got != 0 {
		t.Errorf("Stats().Contacted = %d after Close, want 0", got)
	}
}

// A flood of requests — every frame from a stranger asks again — costs a
// bounded queue: repeats collapse, the excess is counted and dropped.
func TestContactQueueIsBounded(t *testing.T) {
	q := newContactQueue()
	for i := range maxPendingContacts + 10 {
		addr := netip.MustParseAddrPort(fmt.Sprintf("10.0.%d.%d:7946", i/250, i%250+1))
		q.add(addr)
		q.add(addr)
	}
	if len(q.pending) != maxPendingContacts {
		t.Errorf("pending = %d, want %d", len(q.pending), maxPendingContacts)
	}
	if got := q.dropped.Load(); got != 20 {
		t.Errorf("dropped = %d, want 20 (10 addresses beyond the bound, each asked twice)", got)
	}
	first, ok := q.take()
	if !ok || first != netip.MustParseAddrPort("10.0.0.1:7946") {
		t.Errorf("take() = %v, %v; want the first address asked for", first, ok)
	}
	if len(q.wake) != 1 {
		t.Error("adding to the queue did not wake its loop")
	}
}
