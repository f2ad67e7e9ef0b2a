package mesh_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// TestBugLeaveLostAfterPeerFailure shows that a node closed gracefully
// shortly after some of its peers failed is often reported failed, not
// left, by the nodes still alive.
//
// Close leaves through memberlist's Leave, which queues the node's own
// "left" message and returns once the message has been handed out its
// retransmit limit of times (2 in clusters under ten nodes); membership
// then shuts memberlist and the transport down at once. memberlist counts
// a transmission when it picks the message for a packet, and it picks
// packets for failed nodes too (gossip to the dead, for
// GossipToTheDeadTime): both transmissions often go to dead nodes, or the
// last one is picked but not yet sent when the transport closes (the log
// then shows "Failed to send gossip to <live peer>: syncbus: closed"). The
// live peers never hear of the leave and declare the node failed after
// their suspicion timeout.
//
// Each round starts a leaving node and four nodes in child processes,
// SIGKILLs the four, and closes the leaving node once its membership has
// declared them failed; the publisher, which stayed alive throughout,
// must then report the leaving node left.
func TestBugLeaveLostAfterPeerFailure(t *testing.T) {
	const rounds, ghosts = 3, 4
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
			eventually(t, 30*time.Second, "every node to see the others", func() bool {
				return countAlive(pub.Members()) == ghosts+2 && countAlive(leaver.Members()) == ghosts+2
			})
			for _, g := range gs {
				g.kill(t)
			}
			eventually(t, 30*time.Second, "the leaver and the publisher to declare the killed nodes failed", func() bool {
				for _, g := range gs {
					if memberState(pub, g.name) != syncbus.MemberFailed || memberState(leaver, g.name) != syncbus.MemberFailed {
						return false
					}
				}
				return true
			})
			if err := leaver.Close(); err != nil {
				t.Fatalf("closing %s: %v", name, err)
			}
			var st syncbus.MemberState
			eventually(t, 30*time.Second, "the publisher to see "+name+" go", func() bool {
				st = memberState(pub, name)
				return st == syncbus.MemberLeft || st == syncbus.MemberFailed
			})
			if st != syncbus.MemberLeft {
				t.Fatalf("the publisher reports %s %v after it closed gracefully, want left", name, st)
			}
		})
		if !ok {
			break
		}
	}
}
