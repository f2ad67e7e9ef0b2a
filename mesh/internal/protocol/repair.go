package protocol

import (
	"time"

	"github.com/warpmesh/warp/wire"
)

// unknownHoldRounds is how long, in NakBackoffMax, a gap of an origin that
// the membership does not list yet is held rather than given up.
const unknownHoldRounds = 25

// repairGaps sends the repair requests that are due, and gives up (with a
// resync) the gaps that stayed open through every request or whose origin
// is gone.
func (c *Core) repairGaps(now time.Time) {
	v := c.view
	for k, w := range c.gapped {
		if !w.hasGap() {
			delete(c.gapped, k)
			continue
		}
		if due := w.gapOpened.Add(c.t.NakDelay); now.Before(due) {
			c.wake(due)
			continue
		}
		if now.Before(w.nextNak) {
			c.wake(w.nextNak)
			continue
		}
		addr, ok := v.addrOf(k.name)
		if _, listed := v.nodes[k.name]; !listed {
			// Not a member yet (at an orderly start a digest or an event can
			// come before gossip told us of its sender): ask where its
			// digest came from, and give gossip time before counting the
			// gap as lost.
			if w.addr.IsValid() {
				addr, ok = w.addr, true
			}
			if now.Sub(w.gapOpened) < unknownHoldRounds*c.t.NakBackoffMax && (!ok || w.naksSent >= c.t.MaxNaks) {
				w.nextNak = now.Add(c.t.NakBackoffMax)
				c.wake(w.nextNak)
				continue
			}
		}
		if !ok || w.naksSent >= c.t.MaxNaks {
			if w.abandonAll(now) {
				c.resync(w, k.name)
			}
			delete(c.gapped, k)
			continue
		}
		// Ask for no more than the subscriptions can take: a node catching
		// up after a partition or a pause gets its events at the pace it
		// consumes them, not as one burst that overflows into resyncs.
		share := c.share()
		if share == 0 {
			c.wake(now.Add(c.t.CreditPoll))
			continue
		}
		c.ranges = w.missing(c.ranges[:0], wire.MaxRanges, uint64(min(maxRepairSeqs, share)))
		if len(c.ranges) > 0 {
			w.nakTo = c.ranges[len(c.ranges)-1].To
		}
		m := c.send(wire.FrameRepairRequest, TrafficRepair, addr)
		m.Repairs = wire.RepairRequest{Origin: k.name, Boot: k.boot, Ranges: c.rangeCopy(c.ranges)}
		c.stats.RepairRequests++
		if w.naksSent == 0 {
			w.nakSentAt = now // a round-trip sample when the first repair arrives
		} else {
			w.nakSentAt = time.Time{} // Karn: a repeated request gives no sample
		}
		backoff := min(c.nakTimeout(k.name)<<min(w.naksSent, 16), c.t.NakBackoffMax)
		w.nextNak = now.Add(backoff)
		w.naksSent++
		c.wake(w.nextNak)
	}
}

// nakTimeout is how long a repair request waits for its answer before it
// is repeated: the origin's retransmission timeout once the round trip to
// it is measured, and NakBackoffMax until then. A repair request is not
// on anyone's critical path the way an awaited event is: repeating it
// early, on a round trip longer than RetransmitInitial, would have every
// missing event sent twice.
func (c *Core) nakTimeout(origin string) time.Duration {
	if r := c.rtts[origin]; r == nil || r.samples == 0 {
		return c.t.NakBackoffMax
	}
	return c.rto(origin)
}
