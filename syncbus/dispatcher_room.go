package syncbus

import "math"

// Room returns how many more events every subscription can take now
// without losing any: the least free room of the prefix subscriptions
// (none while one's overflow resync is unread), or math.MaxInt32 when
// there is none — exact-key and lease subscriptions keep their newest
// event and never lose one to a slow reader. A bus with flow control
// grants its publishers credit from it.
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
