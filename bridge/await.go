package bridge

import (
	"sync"

	"github.com/warpmesh/warp/syncbus"
)

// await is one PublishAndAwait or PublishAndAwaitTopology in flight. Its
// fields after done are guarded by awaitTable.mu.
type await struct {
	seq     uint64
	counter Counter
	done    chan struct{} // closed once the counter decided

	finished bool
}

func (a *await) finish() {
	if !a.finished {
		a.finished = true
		close(a.done)
	}
}

// awaitTable holds the awaits in flight by sequence number. Publishers add
// and remove, the receiving goroutines record acks, the presence loop
// applies membership changes; one mutex serialises them (one lock per
// acked event is cheap next to a broker round trip).
type awaitTable struct {
	mu sync.Mutex
	m  map[uint64]*await
}

func (t *awaitTable) init() { t.m = make(map[uint64]*await) }

func (t *awaitTable) add(a *await) {
	t.mu.Lock()
	t.m[a.seq] = a
	t.mu.Unlock()
}

func (t *awaitTable) remove(seq uint64) {
	t.mu.Lock()
	delete(t.m, seq)
	t.mu.Unlock()
}

func (t *awaitTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// ack records that node applied event seq and reports whether it counted.
func (t *awaitTable) ack(seq uint64, node string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.m[seq]
	if !ok || a.finished {
		return false
	}
	counted := a.counter.Ack(node)
	if counted && a.counter.Decided() {
		a.finish()
	}
	return counted
}

// decideNow finishes a when it needs no acknowledgement at all.
func (t *awaitTable) decideNow(a *await) {
	t.mu.Lock()
	if a.counter.Decided() {
		a.finish()
	}
	t.mu.Unlock()
}

// update recounts every await against a new member list: a request the
// alive nodes can no longer satisfy ends at once.
func (t *awaitTable) update(members []syncbus.Member) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.m {
		if a.finished {
			continue
		}
		a.counter.Update(members)
		if a.counter.Decided() {
			a.finish()
		}
	}
}

// finish decides the outcome of a after waiting stopped for cause (nil when
// the counter decided).
func (t *awaitTable) finish(a *await, cause error, report *syncbus.AckReport) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	a.finish()
	return a.counter.Outcome(cause, report)
}
