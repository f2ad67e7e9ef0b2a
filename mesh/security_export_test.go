package mesh

import (
	"time"

	"github.com/warpmesh/warp/membership"
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

// BatcherIdle reports whether the batcher has sent every event queued so
// far: nothing waits in its queue and it is not in the middle of a batch.
// Both lengths change only under the batcher's mutex.
func (b *MeshBus) BatcherIdle() bool {
	q := b.out
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue) == 0 && len(q.batch) == 0
}
