package mesh

import (
	"context"
	"sync"

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
// an event as soon as the goroutine wakes, and under load the queue fills
// while the previous datagrams are being sent, so batches grow with the
// load without any timer.
//
// Sequence numbers are assigned here, when events leave, so the numbers
// each receiver sees are dense.
type batcher struct {
	b *MeshBus

	mu      sync.Mutex
	queue   []wire.Event
	waiters int
	room    chan struct{} // closed when the queue is drained, for waiters
	wake    chan struct{}

	// Owned by run.
	batch  []wire.Event
	ob     *outbox
	plan   plan
	spread uint64
}

func newBatcher(b *MeshBus) *batcher {
	return &batcher{
		b:    b,
		room: make(chan struct{}),
		wake: make(chan struct{}, 1),
		ob:   newOutbox(b.keyring, b.opts.Label),
	}
}

// enqueue queues a copy of ev, waiting for room while the queue is full.
func (q *batcher) enqueue(ctx context.Context, ev *wire.Event) error {
	for {
		q.mu.Lock()
		if len(q.queue) < maxQueued {
			q.queue = append(q.queue, *ev)
			q.mu.Unlock()
			select {
			case q.wake <- struct{}{}:
			default:
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
	for {
		select {
		case <-q.wake:
			q.drain()
		case <-q.b.done:
			q.drain() // what was published before Close still leaves
			return
		}
	}
}

func (q *batcher) drain() {
	for {
		batch := q.take()
		if len(batch) == 0 {
			return
		}
		q.send(batch)
		clear(batch) // drop references to keys and clocks
	}
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
	b.sendEvents(v, batch, 0, q.plan.direct, q.plan.relays, q.ob)
	b.num.sent(first)
	b.lastSend.Store(nanotime())
	b.kickLoop()
}
