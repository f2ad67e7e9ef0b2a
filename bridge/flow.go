package bridge

import (
	"context"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// roomPoll is how often a delivery or a publish held by this node's full
// subscriptions looks again for room (times TimeScale). It polls because
// nothing can wake it: a subscriber reads a plain channel, so the
// dispatcher never sees the read that makes room. A look costs little
// (syncbus.Dispatcher.HasRoom re-examines only the subscriptions marked
// full).
const roomPoll = 200 * time.Microsecond

// waitRoom holds the caller while one of this node's prefix or all-events
// subscriptions has no room: the goroutine that hands the broker's
// frames to the subscriptions (the broker client then buffers what
// follows, as it does for any slow reader), or a publish about to deliver
// to this node's own subscriptions. A burst that the subscribers read more
// slowly than it arrives is so delivered whole, where it would otherwise
// overflow them again and again, one resync each time: the bridges' form
// of the mesh's flow control, which a broker's pub/sub does not offer end
// to end. A subscription that makes no room within StallTimeout is let go:
// nothing waits for it until it has room again, and it gets one resync for
// what it could not hold.
//
// It runs for every event delivered and published, so the common case —
// no subscription full — is one atomic load.
func (c *Core) waitRoom(ctx context.Context) error {
	if c.disp.HasRoom() {
		c.caughtUp()
		return nil
	}
	if c.released.Load() {
		return nil
	}
	start := time.Now()
	poll := c.scaled(roomPoll)
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for !c.disp.HasRoom() {
		if time.Since(start) >= c.cfg.StallTimeout {
			c.released.Store(true)
			c.c.flowReleased.Add(1)
			return nil
		}
		select {
		case <-timer.C:
			timer.Reset(poll)
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return syncbus.ErrClosed
		}
	}
	c.c.flowStalls.Add(1)
	c.c.flowStallNanos.Add(int64(time.Since(start)))
	return nil
}

// caughtUp ends a release: the subscriptions have room again. It reads
// before it writes, so that the common case writes nothing shared.
func (c *Core) caughtUp() {
	if c.released.Load() {
		c.released.Store(false)
	}
}

// holdDelivery is waitRoom for the goroutines that hand the broker's
// frames over. While one holds, this node hears nobody — the frames wait
// in the broker client, presence announcements among them — so the time
// it holds is kept (heldNanos, holdStart) and the sweep does not count it
// as the other nodes' silence: a reader slow enough to hold a long burst
// back must not make the publishers look failed.
//
// It reports whether it held.
func (c *Core) holdDelivery() bool {
	if c.disp.HasRoom() {
		c.caughtUp()
		return false
	}
	if c.released.Load() {
		return false
	}
	start := time.Now()
	c.holdStart.Store(start.UnixNano())
	_ = c.waitRoom(context.Background()) // only Close ends it sooner
	c.holdStart.Store(0)
	c.heldNanos.Add(int64(time.Since(start)))
	return true
}

// heldBy returns how long the delivery of frames has been held in all, up
// to now (a hold in progress included).
func (c *Core) heldBy(now time.Time) time.Duration {
	held := c.heldNanos.Load()
	if s := c.holdStart.Load(); s != 0 && now.UnixNano() > s {
		held += now.UnixNano() - s
	}
	return time.Duration(held)
}

// scaled stretches d by the configured TimeScale.
func (c *Core) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * c.cfg.TimeScale)
}
