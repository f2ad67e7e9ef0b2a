package wire

// replayWindow is how far behind the newest counter of a sender a frame may
// arrive and still be accepted (once). Like IPsec's and WireGuard's, the
// window is a bitmap that rotates by whole words, so accepting a frame
// costs a few word operations and no allocation.
const (
	replayWindow = 1024
	replayWords  = replayWindow/64 + 1 // one spare word, cleared as the window advances
)

// window tracks the counters seen from one sender.
type window struct {
	last uint64 // highest counter accepted, 0 before any
	bits [replayWords]uint64
}

// seen reports whether counter c must be refused: seen already, or older
// than the window.
func (w *window) seen(c uint64) bool {
	switch {
	case c > w.last:
		return false
	case w.last-c >= replayWindow:
		return true
	}
	return w.bits[(c/64)%replayWords]&(1<<(c%64)) != 0
}

// accept records c, returning false when it must be refused. It is called
// only after the frame was authenticated, so a forged frame never moves the
// window.
func (w *window) accept(c uint64) bool {
	if c > w.last {
		// Clear the words the window slides over; a jump of more than the
		// whole bitmap clears it all.
		cur, next := w.last/64, c/64
		steps := min(next-cur, replayWords)
		for i := uint64(1); i <= steps; i++ {
			w.bits[(cur+i)%replayWords] = 0
		}
		w.last = c
	} else if w.last-c >= replayWindow {
		return false
	}
	word, bit := &w.bits[(c/64)%replayWords], uint64(1)<<(c%64)
	if *word&bit != 0 {
		return false
	}
	*word |= bit
	return true
}

// senderTable holds the replay windows of the most recently heard senders,
// at most max of them, in least-recently-used order. Entries live in one
// slice linked by index, so a steady set of senders allocates nothing.
//
// Eviction forgets a sender's window: were a frame of an evicted sender
// replayed, it would be accepted once more. Entries are only created for
// authenticated frames, so only a key holder can churn the table; the
// default size (DefaultMaxSenders) is far above the number of sealers a
// cluster runs (one per node incarnation). In unauthenticated mode anyone
// can, and the window is a duplicate filter rather than a defence.
// It is not safe for concurrent use; the Opener locks around it.
type senderTable struct {
	max     int
	index   map[SenderID]int32
	entries []senderEntry
	head    int32 // most recently used, -1 when empty
	tail    int32 // least recently used, -1 when empty
}

type senderEntry struct {
	id         SenderID
	w          window
	prev, next int32
}

func newSenderTable(max int) *senderTable {
	return &senderTable{max: max, index: make(map[SenderID]int32), head: -1, tail: -1}
}

// seen reports whether the sender's window refuses c; an unknown sender
// refuses nothing.
func (t *senderTable) seen(id SenderID, c uint64) bool {
	i, ok := t.index[id]
	return ok && t.entries[i].w.seen(c)
}

// accept records c for the sender, creating its window (and evicting the
// least recently heard sender when full), and reports whether c was new.
func (t *senderTable) accept(id SenderID, c uint64) bool {
	i, ok := t.index[id]
	if !ok {
		i = t.insert(id)
	} else {
		t.unlink(i)
		t.pushFront(i)
	}
	return t.entries[i].w.accept(c)
}

func (t *senderTable) insert(id SenderID) int32 {
	var i int32
	if len(t.entries) < t.max {
		t.entries = append(t.entries, senderEntry{})
		i = int32(len(t.entries) - 1)
	} else {
		i = t.tail
		t.unlink(i)
		delete(t.index, t.entries[i].id)
	}
	t.entries[i] = senderEntry{id: id}
	t.index[id] = i
	t.pushFront(i)
	return i
}

func (t *senderTable) unlink(i int32) {
	e := &t.entries[i]
	if e.prev >= 0 {
		t.entries[e.prev].next = e.next
	} else {
		t.head = e.next
	}
	if e.next >= 0 {
		t.entries[e.next].prev = e.prev
	} else {
		t.tail = e.prev
	}
}

func (t *senderTable) pushFront(i int32) {
	e := &t.entries[i]
	e.prev, e.next = -1, t.head
	if t.head >= 0 {
		t.entries[t.head].prev = i
	}
	t.head = i
	if t.tail < 0 {
		t.tail = i
	}
}

func (t *senderTable) len() int { return len(t.index) }
