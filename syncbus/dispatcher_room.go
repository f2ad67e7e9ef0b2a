package syncbus

import "math"

// Room returns how many more events every subscription can take now
// without losing any: the least free room of the prefix subscriptions
// (none while one's overflow resync is unread), or math.MaxInt32 when
// there is none — exact-key and lease subscriptions keep their newest
// event and never lose one to a slow reader. A bus with flow control
// grants its publishers credit from it. It looks at every prefix
// subscription; HasRoom is the cheap test for Room() > 0.
func (d *Dispatcher) Room() int {
	room := math.MaxInt32
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return room
	}
	for _, s := range d.bounded {
		room = min(room, s.room(d.bufSize))
	}
	return room
}

// HasRoom reports whether every subscription can take one more event now,
// as Room() > 0 does. The delivery that leaves a prefix subscription
// without room marks it full, and the first look that finds room in it
// again (HasRoom's or Room's) unmarks it. While none is marked, HasRoom
// costs one atomic load, whatever their number; otherwise it looks again
// at the marked ones only.
//
// The dispatcher does not see a reader take an event, so nothing tells a
// caller the moment room appears: a caller waiting for room calls HasRoom
// again.
func (d *Dispatcher) HasRoom() bool {
	if d.full.Load() == 0 {
		return true
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return true
	}
	room := true
	for _, s := range d.bounded {
		s.mu.Lock()
		if s.full {
			room = s.roomLocked(d.bufSize) > 0 && room
		}
		s.mu.Unlock()
	}
	return room
}

// markFull marks s full when the delivery that left n events in it left
// it no room. Its caller holds s.mu.
//
// Invariant: a prefix subscription without room is marked full. Only a
// delivery takes room away — a reader only makes room — and every
// delivery into a prefix subscription ends here; so while d.full is zero,
// every subscription has room.
func (s *subscription) markFull(n, size int) {
	if !s.full && (s.resyncPending || n >= size) {
		s.full = true
		s.nfull.Add(1)
	}
}

// clearFull unmarks s. Its caller holds s.mu.
func (s *subscription) clearFull() {
	if s.full {
		s.full = false
		s.nfull.Add(-1)
	}
}
