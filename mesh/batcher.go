package mesh

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// maxQueued bounds the events waiting for the batcher; a publisher that
// finds the queue full waits for room (or for its ctx), so a burst can
// never grow memory without bound.
const maxQueued = 1 << 16

// batcher sends the events of Publish, RevokeLease and Relay. Publishers
// queue events; one goroutine takes everything queued at once and packs it
// into as few datagrams as the budget allows. An idle bus therefore sends
// an event as soon as the goroutine wakes, and under heavy load the queue
// fills while the previous datagrams are being sent, so batches grow with
// the load. Under moderate load — the last drain packed several events and
// happened less than MeshOptions.BatchInterval ago — the goroutine lingers
// until a datagram's worth of events is queued, or until the first of them
// has waited BatchInterval: fewer, fuller datagrams for a bounded delay.
//
// Sequence numbers are assigned here, when events leave, so the numbers
// each receiver sees are dense.
type batcher struct {
	b *MeshBus

	mu      sync.Mutex
	queue   []wire.Event
	firstAt time.Time // when the oldest queued event was queued
	waiters int
	room    chan struct{} // closed when the queue is drained, for waiters
	wake    chan struct{}

	// fill is how many queued events make a datagram's worth (learnt from
	// the frames sent); enqueue wakes a lingering batcher when it is reached.
	fill atomic.Int64

	// Owned by run.
	lastLen int       // events sent by the last drain
	lastAt  time.Time // when the last drain ended
	linger  *time.Timer
	batch   []wire.Event
	ob      *outbox
	plan    plan
	spread  uint64
}

func newBatcher(b *MeshBus) *batcher {
	q := &batcher{
		b:    b,
		room: make(chan struct{}),
		wake: make(chan struct{}, 1),
		ob:   newOutbox(b.keyring, b.opts.Label),
	}
	q.fill.Store(int64(b.opts.BatchSize))
	return q
}

// enqueue queues a copy of ev, waiting for room while the queue is full.
func (q *batcher) enqueue(ctx context.Context, ev *wire.Event) error {
	for {
		q.mu.Lock()
		if n := len(q.queue); n < maxQueued {
			if n == 0 {
				q.firstAt = time.Now()
			}
			q.queue = append(q.queue, *ev)
			q.mu.Unlock()
			// Wake the goroutine for the first event, and for the one that
			// makes a full datagram if it lingers; not for every event.
			if n == 0 || int64(n+1) == q.fill.Load() {
				select {
				case q.wake <- struct{}{}:
				default:
				}
			}
			return nil
		}
		q.waiters++
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			q.leave()
			return ctx.Err()
		case <-q.b.done:
			q.leave()
			return syncbus.ErrClosed
		}
		q.leave()
	}
}

func (q *batcher) leave() {
	q.mu.Lock()
	q.waiters--
	q.mu.Unlock()
}

// take swaps the queue for the batch buffer and wakes waiting publishers.
func (q *batcher) take() []wire.Event {
	q.mu.Lock()
	q.batch, q.queue = q.queue, q.batch[:0]
	if q.waiters > 0 {
		close(q.room)
		q.room = make(chan struct{})
	}
	q.mu.Unlock()
	return q.batch
}

func (q *batcher) run() {
	q.linger = time.NewTimer(time.Hour)
	q.linger.Stop()
	defer q.linger.Stop()
	for {
		select {
		case <-q.wake:
			if q.loaded() {
				q.waitForFill()
			}
			q.drain()
		case <-q.b.done:
			q.drain() // what was published before Close still leaves
			return
		}
	}
}

// loaded reports whether events are flowing fast enough for lingering to
// fill datagrams: the last drain packed several of them, recently.
func (q *batcher) loaded() bool {
	interval := q.b.opts.BatchInterval
	return q.lastLen >= 2 && time.Since(q.lastAt) < interval
}

// waitForFill waits until a datagram's worth of events is queued, or the
// oldest has waited BatchInterval, or the bus closes.
func (q *batcher) waitForFill() {
	q.mu.Lock()
	n, first := len(q.queue), q.firstAt
	q.mu.Unlock()
	fill := int(q.fill.Load())
	if n == 0 || n >= fill {
		return
	}
	q.linger.Reset(time.Until(first.Add(q.b.opts.BatchInterval)))
	defer q.linger.Stop()
	for {
		select {
		case <-q.wake:
			q.mu.Lock()
			n = len(q.queue)
			q.mu.Unlock()
			if n >= fill {
				return
			}
		case <-q.linger.C:
			return
		case <-q.b.done:
			return
		}
	}
}

func (q *batcher) drain() {
	sent := 0
	for {
		batch := q.take()
		if len(batch) == 0 {
			break
		}
		sent += len(batch)
		q.send(batch)
		clear(batch) // drop references to keys and clocks
	}
	q.lastLen, q.lastAt = sent, time.Now()
}

func (q *batcher) send(batch []wire.Event) {
	b := q.b
	// The view comes first: a node that joined gets every event numbered
	// after the view that includes it was built (see view.joinSeq).
	v := b.mustView()
	first := b.num.take(uint64(len(batch)))
	for i := range batch {
		batch[i].Seq = first + uint64(i)
		b.sendBuf.add(&batch[i])
	}
	q.spread++
	q.plan.make(v, q.spread, nil)
	if frames := b.sendEvents(v, batch, 0, q.plan.direct, q.plan.relays, q.ob); frames > 1 {
		// Several frames: the first ones were full, which tells how many
		// events make a datagram's worth.
		q.fill.Store(int64(max(2, min(len(batch)/frames, b.opts.BatchSize))))
	}
	b.num.sent(first)
	b.lastSend.Store(nanotime())
	b.kickLoop()
}
