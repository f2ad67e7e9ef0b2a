package bridge_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/bridge/gatewaytest"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// inMemoryLocal gives each region an InMemoryNetwork.
func inMemoryLocal(t *testing.T, region string) func(string) syncbus.Bus {
	t.Helper()
	net := syncbus.NewInMemoryNetwork()
	return func(name string) syncbus.Bus {
		b, err := net.Join(name, "z", syncbus.WithNodeRegion(region))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
}

func inMemoryRemote(t *testing.T) func(string, string) syncbus.Bus {
	join := inMemoryLocal(t, "")
	return func(name, _ string) syncbus.Bus { return join(name) }
}

func newGateway(t *testing.T, local, remote syncbus.Bus) io.Closer {
	t.Helper()
	g, err := bridge.NewGateway(local, remote)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestGatewayTwoRegions runs the gateway scenario on in-memory buses: two
// regions joined through a third bus, three gateways per region, one
// restarted mid-stream.
func TestGatewayTwoRegions(t *testing.T) {
	warptest.LeakCheck(t)
	gatewaytest.Run(t, gatewaytest.Setup{Local: inMemoryLocal, Remote: inMemoryRemote, Gateway: newGateway})
}

// TestGatewayScopes: local-scope events — lease revocations among them,
// which have no scope option — stay home unless WithAllScopes.
func TestGatewayScopes(t *testing.T) {
	warptest.LeakCheck(t)
	for _, all := range []bool{false, true} {
		local := inMemoryLocal(t, "eu")
		remote := inMemoryLocal(t, "eu")
		l, r := local("l"), remote("r")
		lsvc, rsvc := local("l-svc"), remote("r-svc")
		var opts []bridge.GatewayOption
		if all {
			opts = append(opts, bridge.WithAllScopes())
		}
		g, err := bridge.NewGateway(l, r, opts...)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		// A prefix subscription keeps every event; a key one only the newest.
		sub, err := rsvc.(syncbus.PrefixSubscriber).SubscribePrefix(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		lease, err := rsvc.SubscribeLease(ctx, "lease")
		if err != nil {
			t.Fatal(err)
		}
		tag := func(n uint64) syncbus.PublishOption { return syncbus.WithVectorClock(map[string]uint64{"n": n}) }
		global := syncbus.WithScope(syncbus.ScopeGlobal)
		for _, err := range []error{
			lsvc.Publish(ctx, "k", tag(1)),
			lsvc.RevokeLease(ctx, "lease"),
			lsvc.Publish(ctx, "k", tag(2), global),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		if all {
			if ev := recv(t, sub); ev.VectorClock["n"] != 1 {
				t.Errorf("all scopes: first event crossing is %v, want the local one", ev.VectorClock)
			}
			if ev := recv(t, lease); ev.Op != syncbus.OpLeaseRevoke || ev.Origin != "l-svc" {
				t.Errorf("all scopes: lease got %+v, want the revocation by l-svc", ev)
			}
		}
		if ev := recv(t, sub); ev.VectorClock["n"] != 2 || ev.Scope != syncbus.ScopeGlobal {
			t.Errorf("all=%v: got %+v, want the global event", all, ev)
		}
		// Relays are synchronous in memory, in order: what crossed before
		// the global event is there already.
		select {
		case ev := <-lease:
			if !all {
				t.Errorf("global only: the revocation crossed: %+v", ev)
			}
		default:
		}
		// The gateway counts a relay once Relay returned, which may be a
		// moment after the event arrived.
		want := map[bool]uint64{false: 1, true: 3}[all]
		warptest.Eventually(t, 5*time.Second, func() bool { return g.Stats().LocalToRemote == want },
			"all=%v: LocalToRemote %d, want %d (stats %+v)", all, g.Stats().LocalToRemote, want, g.Stats())
		st := g.Stats()
		if want := map[bool]uint64{false: 2, true: 0}[all]; st.Scoped != want {
			t.Errorf("all=%v: Scoped %d, want %d", all, st.Scoped, want)
		}
		_ = g.Close()
		if err := g.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
}

// recv receives one event from ch within 10s.
func recv(t *testing.T, ch <-chan syncbus.Event) syncbus.Event {
	t.Helper()
	return warptest.Next(t, ch, 10*time.Second, "gateway")
}
