package wire

// EventsBuilder fills one Events frame event by event up to a datagram
// budget, encoding each event once: the mesh batches per destination and
// learns as it goes whether the next event still fits.
//
//	b.Reset(&Events{Origin: "n1", Boot: boot}, DefaultDatagramBudget)
//	for _, ev := range pending {
//		ok, err := b.Append(&ev)
//		if err != nil { /* ev can never be sent: report it */ }
//		if !ok { send(b.Finish(buf[:0])); b.Reset(…); b.Append(&ev) }
//	}
//
// An EventsBuilder is not safe for concurrent use. It owns its buffers:
// keep one per sending goroutine and reuse it, and steady batching
// allocates nothing.
type EventsBuilder struct {
	head   []byte // the frame's fields before the event array
	events []byte // the encoded events
	n      int
	limit  int // the largest body, type byte included
	valid  bool
	seq    uint64
	time   int64
	body   []byte // Finish's uncompressed body
}

// Reset starts a new frame with the header fields of h (h.Events is
// ignored) for sealed datagrams of at most budget bytes: MaxOverhead is kept
// for the envelope. A budget <= 0 means DefaultDatagramBudget; one above
// MaxDatagramSize means MaxDatagramSize. An invalid header is an error and
// leaves the builder refusing every event until the next Reset.
func (b *EventsBuilder) Reset(h *Events, budget int) error {
	switch {
	case budget <= 0:
		budget = DefaultDatagramBudget
	case budget > MaxDatagramSize:
		budget = MaxDatagramSize
	}
	b.limit = min(budget-MaxOverhead, MaxBodySize+1)
	b.events = b.events[:0]
	b.n, b.seq, b.time = 0, 0, 0
	b.head = b.head[:0]
	b.valid = false
	if err := checkEventsHeader(h); err != nil {
		return err
	}
	b.head = appendEventsHeader(b.head, h)
	b.valid = true
	return nil
}

// Len returns the number of events in the frame.
func (b *EventsBuilder) Len() int { return b.n }

// Size returns the size of the uncompressed body so far.
func (b *EventsBuilder) Size() int { return b.size(b.n, len(b.events)) }

func (b *EventsBuilder) size(n, eventBytes int) int {
	return 1 + len(b.head) + arrayHeaderLen(n) + eventBytes
}

// Append adds ev to the frame if it fits the budget. It returns false, and
// leaves the frame unchanged, when it does not fit (or the frame holds
// MaxEventsPerFrame events): finish this frame and start another. An
// invalid event, or one that cannot fit even alone in a frame of this
// budget, is an error (ErrMalformed or ErrTooLarge, naming the key).
func (b *EventsBuilder) Append(ev *Event) (bool, error) {
	if !b.valid {
		return false, errorf(ErrMalformed, "builder has no valid header (Reset failed or was not called)")
	}
	if err := checkEvent(ev); err != nil {
		return false, err
	}
	if b.n == MaxEventsPerFrame {
		return false, nil
	}
	mark := len(b.events)
	b.events = appendEvent(b.events, ev, b.seq, b.time)
	if size := b.size(b.n+1, len(b.events)); size > b.limit {
		b.events = b.events[:mark]
		if b.n == 0 {
			return false, errorf(ErrTooLarge, "event %.64q needs a body of %d bytes, budget allows %d", ev.Key, size, b.limit)
		}
		return false, nil
	}
	b.n++
	b.seq, b.time = ev.Seq, ev.Time
	return true, nil
}

// Finish appends the frame's body to dst, lz4-compressed when that makes it
// smaller, and returns it. Sealed, it fits the budget given to Reset. The
// builder keeps its events until the next Reset.
func (b *EventsBuilder) Finish(dst []byte) []byte {
	body := append(b.body[:0], b.head...)
	body = appendArrayHeader(body, b.n)
	body = append(body, b.events...)
	b.body = body
	s := getScratch()
	dst, s.out = appendBody(dst, FrameEvents, body, true, &s.lz, s.out)
	s.put()
	return dst
}

// Split packs the events of f into as many Events bodies as needed, each
// fitting a sealed datagram of budget bytes (see EventsBuilder.Reset), in
// order. An event that cannot fit any frame is ErrTooLarge naming its key:
// nothing is dropped silently.
func Split(f *Events, budget int) ([][]byte, error) {
	var b EventsBuilder
	if err := b.Reset(f, budget); err != nil {
		return nil, err
	}
	var bodies [][]byte
	for i := range f.Events {
		ev := &f.Events[i]
		ok, err := b.Append(ev)
		if err != nil {
			return nil, err
		}
		if ok {
			continue
		}
		bodies = append(bodies, b.Finish(nil))
		_ = b.Reset(f, budget) // the header was valid above
		if ok, err = b.Append(ev); !ok {
			if err == nil { // unreachable: a fresh frame takes any valid event that fits alone
				err = errorf(ErrTooLarge, "event %.64q does not fit an empty frame", ev.Key)
			}
			return nil, err
		}
	}
	if b.Len() > 0 || len(bodies) == 0 {
		bodies = append(bodies, b.Finish(nil))
	}
	return bodies, nil
}
