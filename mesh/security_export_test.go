package mesh

import (
	"time"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/mesh/internal/protocol"
)

// MembershipTimings replaces FastMembership's failure-detection timings:
// the node probes every probe, waits timeout for an ack, and keeps a node
// suspect for about mult probe intervals before declaring it failed. The
// abuse tests saturate the test process's cores on purpose; with timings
// that leave room for the scheduler, a suspicion can only come from what
// the flood does to the node, not from a probe timeout missed by a busy
// test process.
func MembershipTimings(o *MeshOptions, probe, timeout time.Duration, mult int) {
	fast := o.membershipTuning
	o.membershipTuning = func(c *membership.Config) {
		if fast != nil {
			fast(c)
		}
		c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult = probe, timeout, mult
	}
}

// BatcherIdle reports whether the node has sent every event queued so far:
// nothing waits in its send queue or for flow-control credit.
func (b *MeshBus) BatcherIdle() bool {
	if n, _ := b.in.queued(); n > 0 {
		return false
	}
	idle := false
	if b.do(func(c *protocol.Core) { idle = c.Pending() == 0 }) != nil {
		return true // closed: nothing will be sent any more
	}
	if n, _ := b.in.queued(); n > 0 {
		return false
	}
	return idle
}

// TuneMembership lets a test adjust the membership configuration the
// options produce, after every other tuning.
func TuneMembership(o *MeshOptions, f func(c *membership.Config)) {
	prev := o.membershipTuning
	o.membershipTuning = func(c *membership.Config) {
		if prev != nil {
			prev(c)
		}
		f(c)
	}
}
