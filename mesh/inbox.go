package mesh

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warpmesh/warp/mesh/internal/protocol"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
	"github.com/warpmesh/warp/zones"
)

// inbox is how callers hand work to the event loop, which alone owns the
// protocol core: events to publish (a bounded queue — publishers wait for
// room while the receivers' flow control holds the node back), awaited
// publishes, their cancellations, and calls run on the loop. Publishers
// only touch a mutex-guarded slice and, for the first event or a
// datagram's worth, a one-slot channel, so a publish costs well under a
// microsecond.
type inbox struct {
	mu      sync.Mutex
	events  []wire.Event
	firstAt time.Time // when the oldest queued event was queued
	awaits  []*awaitReq
	cancels []cancelReq
	calls   []func(*protocol.Core)
	limit   int
	waiters int
	room    chan struct{} // closed when the queue falls below limit, for waiters
	wake    chan struct{} // one slot: the loop has work

	// fill is how many queued events make a datagram's worth (learnt from
	// the frames sent): a lingering loop is woken when it is reached.
	fill atomic.Int64
}

// awaitReq is one awaited publish on its way to the loop.
type awaitReq struct {
	id       uint64
	ev       wire.Event
	req      zones.Requirement
	deadline time.Time
	report   bool
	start    time.Time
	done     chan protocol.Outcome // one slot: the loop never blocks on it
}

type cancelReq struct {
	id    uint64
	cause error
}

func newInbox(limit, fill int) *inbox {
	q := &inbox{limit: limit, room: make(chan struct{}), wake: make(chan struct{}, 1)}
	q.fill.Store(int64(fill))
	return q
}

// signal wakes the loop.
func (q *inbox) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// putEvent queues ev for publishing. While the queue is full it waits for
// room, for ctx, for the bus to close, or for the backpressure bound.
func (b *MeshBus) putEvent(ctx context.Context, ev *wire.Event) error {
	q := b.in
	var timer Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		if n := len(q.events); n < q.limit {
			if n == 0 {
				q.firstAt = b.clock.Now()
			}
			q.events = append(q.events, *ev)
			q.mu.Unlock()
			// Wake the loop for the first event, and for the one that makes
			// a full datagram if it lingers; not for every event.
			if n == 0 || int64(n+1) == q.fill.Load() {
				q.signal()
			}
			return nil
		}
		q.waiters++
		room := q.room
		q.mu.Unlock()
		if timer == nil {
			timer = b.clock.NewTimer(b.opts.BackpressureTimeout)
		}
		var err error
		select {
		case <-room:
		case <-ctx.Done():
			err = ctx.Err()
		case <-b.done:
			err = syncbus.ErrClosed
		case <-timer.C():
			err = fmt.Errorf("mesh: %d events queued for %v while receivers had no flow-control credit: %w",
				q.limit, b.opts.BackpressureTimeout, syncbus.ErrBackpressure)
		}
		q.mu.Lock()
		q.waiters--
		q.mu.Unlock()
		if err != nil {
			b.c.publishErrors.Add(1)
			return err
		}
	}
}

// putAwait queues an awaited publish.
func (q *inbox) putAwait(r *awaitReq) {
	q.mu.Lock()
	q.awaits = append(q.awaits, r)
	q.mu.Unlock()
	q.signal()
}

// putCancel asks the loop to end an awaited publish.
func (q *inbox) putCancel(id uint64, cause error) {
	q.mu.Lock()
	q.cancels = append(q.cancels, cancelReq{id, cause})
	q.mu.Unlock()
	q.signal()
}

// putCall queues f to run on the loop.
func (q *inbox) putCall(f func(*protocol.Core)) {
	q.mu.Lock()
	q.calls = append(q.calls, f)
	q.mu.Unlock()
	q.signal()
}

// queued returns how many events wait, and since when the oldest does.
func (q *inbox) queued() (int, time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.events), q.firstAt
}

// takeEvents moves up to max queued events into buf (which it returns) and
// wakes publishers waiting for room.
func (q *inbox) takeEvents(max int, buf []wire.Event) []wire.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(q.events), max)
	if n == len(q.events) {
		buf, q.events = q.events, buf[:0] // swap: no copy in the usual case
	} else {
		buf = append(buf[:0], q.events[:n]...)
		k := copy(q.events, q.events[n:])
		clear(q.events[k:])
		q.events = q.events[:k]
		q.firstAt = time.Time{} // the rest counts as queued now
	}
	if q.waiters > 0 && len(q.events) < q.limit {
		close(q.room)
		q.room = make(chan struct{})
	}
	return buf
}

// takeRequests returns the queued awaits, cancellations and calls.
func (q *inbox) takeRequests() ([]*awaitReq, []cancelReq, []func(*protocol.Core)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	a, c, f := q.awaits, q.cancels, q.calls
	q.awaits, q.cancels, q.calls = nil, nil, nil
	return a, c, f
}

// do runs f on the loop, with the core, and waits for it. After Close, f
// does not run and do returns syncbus.ErrClosed.
func (b *MeshBus) do(f func(*protocol.Core)) error {
	done := make(chan struct{})
	b.in.putCall(func(c *protocol.Core) {
		f(c)
		close(done)
	})
	select {
	case <-done:
		return nil
	case <-b.loopDone:
		select {
		case <-done:
			return nil
		default:
			return syncbus.ErrClosed
		}
	}
}
