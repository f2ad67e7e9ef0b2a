package mesh_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/membership/membershiptest"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
)

// TestMultiProcessKill runs a three-zone mesh across three OS processes on
// 127.0.0.1: this one (the publisher, zone a) and two children (zones b and
// c). It SIGKILLs the child of zone c and checks that the publisher still
// gets two zones, and that once the membership has declared the dead node
// failed, asking for three zones fails fast instead of waiting for its
// deadline.
func TestMultiProcessKill(t *testing.T) {
	base := goleak.IgnoreCurrent()
	// Registered first, so it runs after every other cleanup: the
	// publisher is closed and the children are reaped by then.
	t.Cleanup(func() {
		goleak.VerifyNone(t, append(membershiptest.LeakOptions(), base)...)
	})

	pub := startProcPublisher(t, "mp-a", "a", "local", true)
	seed := pub.Addr().String()
	b := startNodeProc(t, nodeProcConfig{Name: "mp-b", Zone: "b", Seed: seed, Fast: true, Key: "mp:key"})
	c := startNodeProc(t, nodeProcConfig{Name: "mp-c", Zone: "c", Seed: seed, Fast: true, Key: "mp:key"})
	addrB, addrC := b.addr(t, 30*time.Second), c.addr(t, 30*time.Second)

	// Every process sees all three alive, and the publisher knows each
	// child at the address the child announced, in its zone.
	warptest.Eventually(t, 30*time.Second, func() bool {
		return hasMember(pub, "mp-b", "b", addrB, syncbus.MemberAlive) &&
			hasMember(pub, "mp-c", "c", addrC, syncbus.MemberAlive)
	}, "%s", "the publisher to see both children alive")
	for _, p := range []*nodeProc{b, c} {
		warptest.Eventually(t, 30*time.Second, func() bool { return p.sawAlive(3) }, "%s", p.name+" to count 3 members alive")
	}

	// A plain publish crosses the process boundary to both children.
	ctx := ctxTimeout(t, 60*time.Second)
	if err := pub.Publish(ctx, "mp:key"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*nodeProc{b, c} {
		p.waitLine(t, 10*time.Second, "the published event", func(f []string) bool {
			return len(f) == 4 && f[0] == "event" && f[1] == "mp:key" && f[2] == "mp-a" && f[3] == "a"
		})
	}

	// Before the kill, three zones apply the event.
	var rep syncbus.AckReport
	if err := pub.PublishAndAwaitTopology(ctxTimeout(t, 20*time.Second), "mp:key", 3, syncbus.WithAckReport(&rep)); err != nil {
		t.Fatalf("Topology(3) before the kill: %v", err)
	}
	if want := []string{"a", "b", "c"}; !slices.Equal(sorted(rep.Zones), want) {
		t.Fatalf("Topology(3) acked zones %v, want %v", rep.Zones, want)
	}

	c.kill(t)
	if code := c.exitCode(); code != -1 {
		t.Fatalf("node mp-c exited with status %d, want death by signal (-1)\n%s", code, c.diagnostics())
	}

	// Right after the kill the membership may still count mp-c alive:
	// two zones are satisfied all the same, by a and b.
	rep = syncbus.AckReport{}
	if err := pub.PublishAndAwaitTopology(ctxTimeout(t, 20*time.Second), "mp:key", 2, syncbus.WithAckReport(&rep)); err != nil {
		t.Fatalf("Topology(2) after the kill: %v", err)
	}
	if len(rep.Zones) < 2 || slices.Contains(rep.Zones, "c") {
		t.Fatalf("Topology(2) after the kill acked zones %v, want a and b", rep.Zones)
	}

	// Once the publisher's membership declares mp-c failed, three zones
	// are known impossible: the call fails fast, without waiting for its
	// deadline.
	warptest.Eventually(t, 30*time.Second, func() bool {
		return memberState(pub, "mp-c") == syncbus.MemberFailed
	}, "%s", "the publisher to declare mp-c failed")
	long, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	err := pub.PublishAndAwaitTopology(long, "mp:key", 3)
	elapsed := time.Since(start)
	if !errors.Is(err, syncbus.ErrQuorumNotSatisfied) {
		t.Fatalf("Topology(3) after mp-c failed: %v, want ErrQuorumNotSatisfied", err)
	}
	var qe *syncbus.QuorumError
	if !errors.As(err, &qe) {
		t.Fatalf("Topology(3) after mp-c failed: %T is not a *QuorumError", err)
	}
	if !qe.FailFast || qe.Kind != syncbus.QuorumZones || qe.Required != 3 || qe.Available != 2 {
		t.Fatalf("Topology(3) after mp-c failed: %+v, want a fail fast with 2 of 3 zones available", qe)
	}
	if errors.Is(err, context.DeadlineExceeded) || long.Err() != nil {
		t.Fatalf("Topology(3) after mp-c failed waited for its deadline: %v", err)
	}
	t.Logf("Topology(3) failed fast in %v: %v", elapsed, err)

	// The surviving child noticed too, and the two live zones still work.
	b.waitLine(t, 30*time.Second, "mp-c declared failed", func(f []string) bool {
		return len(f) == 5 && f[0] == "member" && f[1] == "Failed" && f[2] == "mp-c"
	})
	if err := pub.PublishAndAwaitTopology(ctxTimeout(t, 20*time.Second), "mp:key", 2); err != nil {
		t.Fatalf("Topology(2) after mp-c failed: %v", err)
	}

	// Closing stdin makes a child leave gracefully and exit by itself.
	if !b.stop() {
		t.Fatalf("node mp-b did not exit within 10s of its stdin closing\n%s", b.diagnostics())
	}
	if code := b.exitCode(); code != 0 {
		t.Fatalf("node mp-b exited with status %d\n%s", code, b.diagnostics())
	}
	// The publisher stops counting it. It should report it left, not
	// failed; TestBugLeaveLostAfterPeerFailure shows why it sometimes
	// does not, so either is accepted here.
	var stateB syncbus.MemberState
	warptest.Eventually(t, 10*time.Second, func() bool {
		stateB = memberState(pub, "mp-b")
		return stateB == syncbus.MemberLeft || stateB == syncbus.MemberFailed
	}, "%s", "the publisher to see mp-b go")
	if stateB != syncbus.MemberLeft {
		t.Logf("the publisher reports mp-b %v after its graceful leave, not left", stateB)
	}
}

// startProcPublisher starts an in-process node on 127.0.0.1 that the child
// processes join (it joins peers, if any), and closes it in t.Cleanup.
func startProcPublisher(t testing.TB, name, zone, profile string, fast bool, peers ...string) *mesh.MeshBus {
	t.Helper()
	o := mesh.MeshOptions{
		NodeName:   name,
		BindAddr:   "127.0.0.1",
		Port:       -1,
		Zone:       zone,
		Profile:    profile,
		Label:      procLabel,
		SecretKeys: [][]byte{procSecret},
		Peers:      peers,
	}
	if fast {
		mesh.FastMembership(&o)
	}
	bus, err := mesh.NewMeshBus(o)
	if err != nil {
		t.Fatalf("node %s: %v", name, err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	return bus
}

// hasMember reports whether bus knows node in zone at addr, in state.
func hasMember(bus *mesh.MeshBus, node, zone, addr string, state syncbus.MemberState) bool {
	for _, m := range bus.Members() {
		if m.Name == node {
			return m.Zone == zone && m.Addr == addr && m.State == state
		}
	}
	return false
}

// memberState returns the state bus knows node in, or an invalid state
// when it does not know it.
func memberState(bus *mesh.MeshBus, node string) syncbus.MemberState {
	for _, m := range bus.Members() {
		if m.Name == node {
			return m.State
		}
	}
	return syncbus.MemberState(255)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
