package syncbus

import "sync"

// DefaultDedupeWindow is how many event IDs a DedupeWindow remembers unless
// told otherwise.
const DefaultDedupeWindow = 4096

// DedupeWindow remembers the most recent event IDs, so a receiver delivers
// an event that reaches it twice (relayed by two gateways, or retransmitted)
// only once. It forgets the oldest ID when full: an ID seen again after
// size newer ones is taken as new. It is safe for concurrent use.
type DedupeWindow struct {
	mu   sync.Mutex
	seen map[EventID]struct{}
	ring []EventID // the IDs in seen, oldest at next once full
	next int
}

// NewDedupeWindow returns a window remembering size IDs (size <= 0 means
// DefaultDedupeWindow).
func NewDedupeWindow(size int) *DedupeWindow {
	if size <= 0 {
		size = DefaultDedupeWindow
	}
	return &DedupeWindow{
		seen: make(map[EventID]struct{}, size),
		ring: make([]EventID, 0, size),
	}
}

// Seen reports whether id is in the window, and records it if it was not.
// The zero ID is never recorded and never reported as seen.
func (w *DedupeWindow) Seen(id EventID) bool {
	if id.IsZero() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.seen[id]; ok {
		return true
	}
	if len(w.ring) < cap(w.ring) {
		w.ring = append(w.ring, id)
	} else {
		delete(w.seen, w.ring[w.next])
		w.ring[w.next] = id
		w.next = (w.next + 1) % len(w.ring)
	}
	w.seen[id] = struct{}{}
	return false
}

// Len returns how many IDs the window holds.
func (w *DedupeWindow) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}
