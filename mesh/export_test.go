package mesh

import (
	"time"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/mesh/internal/protocol"
)

// SetMuted makes the node stop acknowledging (it keeps delivering and
// relaying, and forwards its zone peers' acks), for the deadline cases of
// the tests.
func (b *MeshBus) SetMuted(muted bool) {
	_ = b.do(func(c *protocol.Core) { c.SetMuted(muted) })
}

// FastMembership shortens the membership timings so that tests notice
// failures within a second or so.
func FastMembership(o *MeshOptions) {
	o.membershipTuning = func(c *membership.Config) {
		c.ProbeInterval = 100 * time.Millisecond
		c.ProbeTimeout = 50 * time.Millisecond
		c.GossipInterval = 20 * time.Millisecond
		c.SuspicionMult = 2
		c.PushPullInterval = 2 * time.Second
		// Not below twice the push/pull interval: a node forgotten earlier
		// can come back as alive through a state exchange.
		c.GossipToTheDeadTime = 5 * time.Second
		c.LeaveTimeout = 500 * time.Millisecond
	}
}

// SetHidden keeps the members hide names out of the node's data plane, as
// if its membership had not heard of them yet (a lopsided view), until it
// is called again with nil.
func (b *MeshBus) SetHidden(hide func(name string) bool) {
	_ = b.do(func(c *protocol.Core) {
		b.hidden = hide
		b.viewVersion = 0 // rebuild the view now
		if err := b.syncView(b.clock.Now()); err != nil {
			panic(err)
		}
	})
}

// LocalPoll is the interval at which a publish held by the node's own
// full subscriptions looks again for room, at TimeScale 1: the duration of
// the one timer that wait makes.
const LocalPoll = localPoll
