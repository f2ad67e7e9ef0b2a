package syncbus_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v", what, timeout)
		}
		<-tick.C
	}
}

func join(t *testing.T, net *syncbus.InMemoryNetwork, name, zone string, opts ...syncbus.NodeOption) *syncbus.InMemoryBus {
	t.Helper()
	b, err := net.Join(name, zone, opts...)
	if err != nil {
		t.Fatalf("Join(%q): %v", name, err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestNewInMemoryBus(t *testing.T) {
	b := newLoneBus(t)
	ctx := context.Background()
	ch, err := b.Subscribe(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	ev := recv(t, ch) // delivery is synchronous
	if ev.Origin != "local" || ev.Zone != "" || ev.Key != "k" || ev.ID.IsZero() {
		t.Errorf("got %+v", ev)
	}

	var qe *syncbus.QuorumError
	err = b.PublishAndAwait(ctx, "k", 1)
	if !errors.As(err, &qe) || !qe.FailFast || qe.Available != 0 || !errors.Is(err, syncbus.ErrQuorumNotSatisfied) {
		t.Errorf("PublishAndAwait(1) alone: %v", err)
	}
	var r syncbus.AckReport
	if err := b.PublishAndAwaitTopology(ctx, "k", 1, syncbus.WithAckReport(&r)); err != nil {
		t.Errorf("PublishAndAwaitTopology(1) alone: %v", err)
	}
	if len(r.Nodes) != 0 || !slices.Equal(r.Zones, []string{""}) {
		t.Errorf("report %+v, want no nodes and the zone \"\"", r)
	}
	err = b.PublishAndAwaitTopology(ctx, "k", 2)
	if !errors.As(err, &qe) || !qe.FailFast || qe.Available != 1 {
		t.Errorf("PublishAndAwaitTopology(2) alone: %v", err)
	}
	if ms := b.Members(); len(ms) != 1 || ms[0].Name != "local" || ms[0].State != syncbus.MemberAlive {
		t.Errorf("Members = %+v", ms)
	}
	if b.Name() != "local" || b.Zone() != "" {
		t.Errorf("Name, Zone = %q, %q", b.Name(), b.Zone())
	}
}

// newLoneBus returns a lone bus closed at the end of the test.
func newLoneBus(t *testing.T) *syncbus.InMemoryBus {
	b := syncbus.NewInMemoryBus()
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestJoin(t *testing.T) {
	net := syncbus.NewInMemoryNetwork()
	a := join(t, net, "a", "z1", syncbus.WithNodeRegion("eu"))
	if _, err := net.Join("a", "z2"); !errors.Is(err, syncbus.ErrNodeExists) {
		t.Errorf("duplicate Join: %v, want ErrNodeExists", err)
	}
	if _, err := net.Join("", "z"); !errors.Is(err, syncbus.ErrInvalidKey) {
		t.Errorf("Join with no name: %v, want ErrInvalidKey", err)
	}
	for name, opt := range map[string]syncbus.NodeOption{
		"ack timeout":        syncbus.WithAckTimeout(-time.Second),
		"prefix buffer":      syncbus.WithPrefixBuffer(-1),
		"huge prefix buffer": syncbus.WithPrefixBuffer(syncbus.MaxPrefixBuffer + 1),
		"dedupe window":      syncbus.WithDedupeWindow(-1),
	} {
		if _, err := net.Join("bad", "z", opt); err == nil {
			t.Errorf("Join with a bad %s: nil error", name)
		}
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	ms := net.Members()
	if len(ms) != 1 || ms[0] != (syncbus.Member{Name: "a", Zone: "z1", Region: "eu", State: syncbus.MemberLeft}) {
		t.Errorf("Members after Close = %+v, want a left", ms)
	}
	a2 := join(t, net, "a", "z3")
	b := join(t, net, "b", "z1", syncbus.WithLogger(nil))
	want := []syncbus.Member{{Name: "a", Zone: "z3", State: syncbus.MemberAlive}, {Name: "b", Zone: "z1", State: syncbus.MemberAlive}}
	if ms := a2.Members(); !slices.Equal(ms, want) {
		t.Errorf("Members after rejoin = %+v, want %+v", ms, want)
	}
	if b.Members() == nil || a.Members() != nil {
		t.Error("Members: want a list from an open bus and nil from a closed one")
	}
}

// TestInMemoryDefaultAckTimeout: without a ctx deadline, an awaiting call
// gives up after the node's ack timeout.
func TestInMemoryDefaultAckTimeout(t *testing.T) {
	net := syncbus.NewInMemoryNetwork()
	a := join(t, net, "a", "z1", syncbus.WithAckTimeout(20*time.Millisecond))
	b := join(t, net, "b", "z2")
	b.SetAcking(false)
	err := a.PublishAndAwait(context.Background(), "k", 1)
	var qe *syncbus.QuorumError
	if !errors.As(err, &qe) || !errors.Is(err, context.DeadlineExceeded) || qe.FailFast || len(qe.AckedNodes) != 0 {
		t.Fatalf("got %v, want a deadline QuorumError with no acks", err)
	}
	b.SetAcking(true)
	if err := a.PublishAndAwait(context.Background(), "k", 1); err != nil {
		t.Errorf("after SetAcking(true): %v", err)
	}
	m := a.Metrics()
	if m.AwaitFailed != 1 || m.AwaitSatisfied != 1 || m.AwaitFailFast != 0 || m.AckLatency.Count != 1 || m.AcksReceived != 1 {
		t.Errorf("metrics %+v", m)
	}
	if got := b.Metrics().AcksSent; got != 1 {
		t.Errorf("b AcksSent = %d, want 1 (none while muted)", got)
	}
}

// TestInMemoryCloseEndsAwait: Close ends a waiting call of the closing node.
func TestInMemoryCloseEndsAwait(t *testing.T) {
	net := syncbus.NewInMemoryNetwork()
	a := join(t, net, "a", "z1")
	b := join(t, net, "b", "z2")
	b.SetAcking(false)
	errc := make(chan error, 1)
	go func() { errc <- a.PublishAndAwait(context.Background(), "k", 1) }()
	eventually(t, 5*time.Second, "the call published", func() bool { return a.Metrics().Published == 1 })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	if !errors.Is(err, syncbus.ErrQuorumNotSatisfied) || !errors.Is(err, syncbus.ErrClosed) {
		t.Errorf("got %v, want a QuorumError caused by ErrClosed", err)
	}
}

func TestInMemoryCancelledContext(t *testing.T) {
	net := syncbus.NewInMemoryNetwork()
	a := join(t, net, "a", "z1")
	join(t, net, "b", "z2")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Publish(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish: %v", err)
	}
	if err := a.PublishAndAwait(ctx, "k", 1); !errors.Is(err, context.Canceled) || !errors.Is(err, syncbus.ErrQuorumNotSatisfied) {
		t.Errorf("PublishAndAwait: %v", err)
	}
	if err := a.Relay(ctx, syncbus.Event{ID: syncbus.NewIDGenerator().Next(), Key: "k"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Relay: %v", err)
	}
	if m := a.Metrics(); m.Published != 0 || m.PublishErrors != 3 {
		t.Errorf("Published %d PublishErrors %d, want 0 and 3", m.Published, m.PublishErrors)
	}
}

func TestInMemoryInvalidScope(t *testing.T) {
	b := newLoneBus(t)
	err := b.Publish(context.Background(), "k", syncbus.WithScope(syncbus.Scope(9)))
	if !errors.Is(err, syncbus.ErrInvalidEvent) {
		t.Errorf("got %v, want ErrInvalidEvent", err)
	}
}

// TestInMemoryDedupeWindow: a relayed ID is delivered once while the
// window remembers it, again once it has been forgotten.
func TestInMemoryDedupeWindow(t *testing.T) {
	b, err := syncbus.NewInMemoryNetwork().Join("n", "z", syncbus.WithDedupeWindow(2))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	ch, _ := b.SubscribePrefix(ctx, "")
	ids := syncbus.NewIDGenerator()
	evs := []syncbus.Event{{ID: ids.Next(), Key: "a"}, {ID: ids.Next(), Key: "b"}, {ID: ids.Next(), Key: "c"}}
	relay := func(ev syncbus.Event) {
		t.Helper()
		if err := b.Relay(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	relay(evs[0])
	relay(evs[0])
	relay(evs[1])
	relay(evs[2]) // forgets evs[0]
	relay(evs[2])
	relay(evs[0])
	var keys []string
	for _, ev := range drainAll(ch) {
		keys = append(keys, ev.Key)
	}
	if !slices.Equal(keys, []string{"a", "b", "c", "a"}) {
		t.Errorf("delivered %v, want [a b c a]", keys)
	}
	// A Relay of an ID the window holds changes nothing but Duplicates
	// (the relay semantics every bus shares; see syncbus/gateway.go).
	if m := b.Metrics(); m.Duplicates != 2 || m.Relayed != 4 || m.Published != 4 {
		t.Errorf("Duplicates %d Relayed %d Published %d, want 2 4 4", m.Duplicates, m.Relayed, m.Published)
	}
}

// TestInMemoryZoneQuorumOwnZone: the publisher is one of its zone's nodes.
func TestInMemoryZoneQuorumOwnZone(t *testing.T) {
	net := syncbus.NewInMemoryNetwork()
	a := join(t, net, "a", "z1")
	b := join(t, net, "b", "z1")
	join(t, net, "c", "z1")
	b.SetAcking(false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var r syncbus.AckReport
	// q = 2 in a zone of 3: a itself and c.
	if err := a.PublishAndAwaitTopology(ctx, "k", 1, syncbus.WithZoneQuorum(2), syncbus.WithAckReport(&r)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Nodes, []string{"c"}) || !slices.Equal(r.Zones, []string{"z1"}) {
		t.Errorf("report %+v, want nodes [c] zones [z1]", r)
	}
	short, cancelShort := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancelShort()
	err := a.PublishAndAwaitTopology(short, "k", 1, syncbus.WithZoneQuorum(3))
	var qe *syncbus.QuorumError
	if !errors.As(err, &qe) || qe.FailFast || qe.ZoneQuorum != 3 || len(qe.AckedZones) != 0 || !slices.Equal(qe.AckedNodes, []string{"c"}) {
		t.Errorf("q = 3 with b muted: %v", err)
	}
}

// TestInMemoryReplicaReportZones: a replica report names the zones of the
// acking nodes.
func TestInMemoryReplicaReportZones(t *testing.T) {
	net := syncbus.NewInMemoryNetwork()
	a := join(t, net, "a", "z1")
	join(t, net, "b", "z2")
	join(t, net, "c", "z2")
	join(t, net, "d", "z3")
	var r syncbus.AckReport
	if err := a.PublishAndAwait(context.Background(), "k", 3, syncbus.WithAckReport(&r)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Nodes, []string{"b", "c", "d"}) || !slices.Equal(r.Zones, []string{"z2", "z3"}) {
		t.Errorf("report %+v", r)
	}
}

func TestValidateRelayed(t *testing.T) {
	id := syncbus.NewIDGenerator().Next()
	good := syncbus.Event{ID: id, Key: "k"}
	if err := syncbus.ValidateRelayed(good); err != nil {
		t.Errorf("valid event: %v", err)
	}
	revoke := good
	revoke.Op = syncbus.OpLeaseRevoke
	if err := syncbus.ValidateRelayed(revoke); err != nil {
		t.Errorf("valid revocation: %v", err)
	}
	cases := map[string]struct {
		mod  func(*syncbus.Event)
		want error
	}{
		"empty key":     {func(e *syncbus.Event) { e.Key = "" }, syncbus.ErrInvalidKey},
		"zero ID":       {func(e *syncbus.Event) { e.ID = syncbus.EventID{} }, syncbus.ErrInvalidEvent},
		"resync":        {func(e *syncbus.Event) { e.Op = syncbus.OpResync }, syncbus.ErrInvalidEvent},
		"unknown op":    {func(e *syncbus.Event) { e.Op = 77 }, syncbus.ErrInvalidEvent},
		"unknown scope": {func(e *syncbus.Event) { e.Scope = 5 }, syncbus.ErrInvalidEvent},
	}
	for name, c := range cases {
		ev := good
		c.mod(&ev)
		if err := syncbus.ValidateRelayed(ev); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	if err := syncbus.ValidateKey("x"); err != nil {
		t.Errorf("ValidateKey(x): %v", err)
	}
}
