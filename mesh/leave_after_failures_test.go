package mesh_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// TestLeaveIsHeardAfterPeersFailed: a node closed gracefully shortly after
// some of its peers failed is reported left, not failed, by the nodes still
// alive.
//
// memberlist's Leave returns once its "left" message was picked for a few
// packets, and it also picks packets for recently failed nodes (gossip to
// the dead), so every copy can go to dead nodes or still be unsent when the
// node shuts down. membership therefore also pushes its state directly to a
// few alive members (a push/pull over TCP) before shutting down.
//
// Each round starts a leaving node and six nodes in child processes,
// SIGKILLs the six, and closes the leaving node once its membership has
// declared them failed; the publisher, which stayed alive throughout, must
// then report the leaving node left. Without the direct push a round fails
// about two times in three.
func TestLeaveIsHeardAfterPeersFailed(t *testing.T) {
	const rounds, ghosts = 4, 6
	pub := startProcPublisher(t, "lv-a", "a", "local", true)
	seed := pub.Addr().String()
	for r := range rounds {
		ok := t.Run(fmt.Sprintf("round%d", r), func(t *testing.T) {
			name := fmt.Sprintf("lv-leaver%d", r)
			leaver := startProcPublisher(t, name, "b", "local", true, seed)
			var gs []*nodeProc
			for i := range ghosts {
				gs = append(gs, startNodeProc(t, nodeProcConfig{Name: fmt.Sprintf("lv-ghost%d-%d", r, i), Zone: "g", Seed: seed, Fast: true}))
			}
			for _, g := range gs {
				g.addr(t, 30*time.Second)
			}
			warptest.Eventually(t, 30*time.Second, func() bool {
				return countAlive(pub.Members()) == ghosts+2 && countAlive(leaver.Members()) == ghosts+2
			}, "%s", "every node to see the others")
			for _, g := range gs {
				g.kill(t)
			}
			warptest.Eventually(t, 30*time.Second, func() bool {
				for _, g := range gs {
					if memberState(pub, g.name) != syncbus.MemberFailed || memberState(leaver, g.name) != syncbus.MemberFailed {
						return false
					}
				}
				return true
			}, "%s", "the leaver and the publisher to declare the killed nodes failed")
			if err := leaver.Close(); err != nil {
				t.Fatalf("closing %s: %v", name, err)
			}
			var st syncbus.MemberState
			warptest.Eventually(t, 30*time.Second, func() bool {
				st = memberState(pub, name)
				return st == syncbus.MemberLeft || st == syncbus.MemberFailed
			}, "%s", "the publisher to see "+name+" go")
			if st != syncbus.MemberLeft {
				t.Fatalf("the publisher reports %s %v after it closed gracefully, want left", name, st)
			}
		})
		if !ok {
			break
		}
	}
}
