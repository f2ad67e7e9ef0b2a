package membership

import (
	"fmt"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// TestJoinNewsReachesEveryNode: nodes started one after another, each
// given only the first as seed, all learn of each other within a few
// gossip rounds — not at the next full state exchange, 15 s later under the
// local profile (the mesh's data plane sends nothing to a node it does not
// know). The local profile's own timings are used.
func TestJoinNewsReachesEveryNode(t *testing.T) {
	for round := range 4 {
		var nodes []*Membership
		for i := range 5 {
			c := Config{
				Name: fmt.Sprintf("r%d-n%d", round, i), BindAddr: "127.0.0.1", BindPort: -1,
				Profile: ProfileLocal, Label: fmt.Sprintf("join-%d", round), Logger: testLogger(),
			}
			if i > 0 {
				c.Seeds = []string{nodes[0].Local().Addr.String()}
			}
			nodes = append(nodes, startNode(t, c))
		}
		start := time.Now()
		// Well under the local profile's 15 s push/pull interval.
		waitConverged(t, nodes, 5*time.Second)
		t.Logf("round %d: converged in %v", round, time.Since(start).Round(time.Millisecond))
		for _, n := range nodes {
			_ = n.Close()
		}
	}
}

// TestLeaveIsHeardAfterPeersFailed: a node closed gracefully shortly after
// some of its peers failed is reported left, not failed, by the nodes still
// alive.
//
// memberlist's Leave returns once its "left" message was picked for a few
// packets, and it also picks packets for recently failed nodes (gossip to
// the dead), so every copy can go to dead nodes or still be unsent when the
// node shuts down. Membership therefore also pushes its state directly to
// a few alive members (a push/pull over TCP) before shutting down.
//
// Each round starts a leaving node and six others, crashes the six (their
// sockets close, no leave), and closes the leaving node once it has
// declared them failed; the first node, alive throughout, must then report
// the leaving node left. Without the direct push a round failed about two
// times in three.
func TestLeaveIsHeardAfterPeersFailed(t *testing.T) {
	const rounds, ghosts = 3, 6
	fast := func(name string) Config {
		c := testConfig(name)
		c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult = 100*time.Millisecond, 50*time.Millisecond, 2
		return c
	}
	stay := startNode(t, fast("lv-stay"))
	seed := stay.Local().Addr.String()
	for r := range rounds {
		leaverCfg := fast(fmt.Sprintf("lv-leaver%d", r))
		leaverCfg.Seeds = []string{seed}
		leaver := startNode(t, leaverCfg)
		var gs []*Membership
		for i := range ghosts {
			c := fast(fmt.Sprintf("lv-ghost%d-%d", r, i))
			c.Seeds = []string{seed}
			gs = append(gs, startNode(t, c))
		}
		warptest.Eventually(t, 30*time.Second, func() bool {
			return len(stay.Snapshot().Alive()) == ghosts+2 && len(leaver.Snapshot().Alive()) == ghosts+2
		}, "every node to see the others: %s", func() string { return describe(append([]*Membership{stay, leaver}, gs...)) })
		for _, g := range gs {
			g.shutdown(false) // as if the process died
		}
		ghostNames := names(gs)
		warptest.Eventually(t, 30*time.Second, func() bool {
			return sees(stay, syncbus.MemberFailed, ghostNames...) && sees(leaver, syncbus.MemberFailed, ghostNames...)
		}, "the leaver and the node that stays to declare the crashed nodes failed")
		if err := leaver.Close(); err != nil {
			t.Fatalf("closing %s: %v", leaver.Name(), err)
		}
		var st syncbus.MemberState
		warptest.Eventually(t, 30*time.Second, func() bool {
			n, ok := stay.Snapshot().Lookup(leaver.Name())
			st = n.State
			return ok && !st.Alive()
		}, "the node that stays to see %s go", leaver.Name())
		if st != syncbus.MemberLeft {
			t.Fatalf("round %d: %s is reported %v after it closed gracefully, want left", r, leaver.Name(), st)
		}
	}
}
