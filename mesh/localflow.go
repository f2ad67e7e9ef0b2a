package mesh

import (
	"context"
	"time"

	"github.com/warpmesh/warp/mesh/internal/protocol"
	"github.com/warpmesh/warp/syncbus"
)

// localPoll is how often a publish held by this node's own full
// subscriptions looks again for room (times TimeScale). It polls because
// nothing can wake it: a subscriber reads a plain channel, so the
// dispatcher never sees the read that makes room. A look costs little
// (syncbus.Dispatcher.HasRoom re-examines only the subscriptions marked
// full).
const localPoll = 200 * time.Microsecond

// waitLocalRoom holds a publish while this node's own prefix
// subscriptions have no room, as flow control holds it for a remote
// receiver without credit: the publisher's own consumers are receivers
// too, and a burst published faster than they read would otherwise
// overflow them again and again, one resync each time. A consumer that
// does not make room within StallTimeout is let go, as a remote receiver
// is: publishes no longer wait for it until it has room again, and its
// subscription gets one resync for what it could not hold.
//
// It runs on every Publish, so the common case — no subscription full —
// must not cost a walk of every subscription: HasRoom answers it with one
// atomic load.
func (b *MeshBus) waitLocalRoom(ctx context.Context) error {
	if b.disp.HasRoom() {
		b.localReleased.Store(false)
		return nil
	}
	if b.localReleased.Load() {
		return nil
	}
	start := b.clock.Now()
	stall := protocol.Scale(b.opts.StallTimeout, b.opts.TimeScale)
	poll := b.clock.NewTimer(protocol.Scale(localPoll, b.opts.TimeScale))
	defer poll.Stop()
	for !b.disp.HasRoom() {
		if b.clock.Now().Sub(start) >= stall {
			b.localReleased.Store(true)
			b.c.localReleased.Add(1)
			return nil
		}
		select {
		case <-poll.C():
			poll.Reset(protocol.Scale(localPoll, b.opts.TimeScale))
		case <-ctx.Done():
			return ctx.Err()
		case <-b.done:
			return syncbus.ErrClosed
		}
	}
	b.c.localStalls.Add(1)
	return nil
}
