package wire

import (
	"slices"
	"strings"
	"sync"

	"github.com/warpmesh/warp/syncbus"
)

// Flags of an Events frame.
const (
	// FlagRelay tells the receiver it is this frame's relay for its zone:
	// it must fan the events out to its zone's other nodes.
	FlagRelay uint8 = 1 << iota
	// FlagRetransmit marks a frame resent after a repair request or a
	// missing acknowledgement.
	FlagRetransmit
)

// Flags of one event.
const (
	// EventAckWanted marks an event whose publisher awaits acknowledgements:
	// receivers ack it once delivered.
	EventAckWanted uint8 = 1 << iota
	// EventRelayed marks an event republished by a gateway: receivers
	// deduplicate it by ID.
	EventRelayed
)

// Events is a batch of events numbered by one node, the origin of the
// sequence.
//
// Decoding into an Events reuses its Events slice (and the names of its
// elements when they did not change); strings and maps in a decoded value
// are fresh and may be kept, the Events slice may not be kept across
// decodes.
type Events struct {
	// Origin is the node that numbered these events. It is never empty.
	Origin string
	// Boot is the origin's incarnation, chosen at random when it starts.
	Boot uint64
	// Zone and Region are the origin's.
	Zone, Region string
	// Flags holds FlagRelay and FlagRetransmit. Unknown bits are kept.
	Flags uint8
	// Events are the events, in the order they were added.
	Events []Event
}

// Event is one event in an Events frame.
type Event struct {
	// Seq is the event's number in the (Origin, Boot) sequence, from 1.
	Seq uint64
	// ID is unique per event and kept by relays.
	ID syncbus.EventID
	// Key is the invalidated key or revoked lease ID; never empty.
	Key string
	// Op and Scope must be values syncbus defines.
	Op    syncbus.Op
	Scope syncbus.Scope
	// Flags holds EventAckWanted and EventRelayed. Unknown bits are kept.
	Flags uint8
	// Origin, Zone and Region are the event's publisher's when they differ
	// from the frame's: "" means the frame's value. They are set for events
	// relayed by a gateway and for WithRegion overrides.
	Origin, Zone, Region string
	// VectorClock is the event's vector clock, nil when none. An empty map
	// is sent as none.
	VectorClock map[string]uint64
	// Time is when the event was published, in Unix nanoseconds.
	Time int64
}

// The msgpack layout of an Events payload, one array:
//
//	[Origin, Boot, Zone, Region, Flags, [event, …]]
//
// and of each event, an array whose last four fields are left out when
// empty:
//
//	[Seq-prevSeq, ID (bin 16), Key, Op, Scope, Flags, Time-prevTime,
//	 Origin, Zone, Region, {name: counter, …}]
//
// Seq and Time are signed differences from the previous event's (from 0 for
// the first), wrapping on overflow: consecutive events then cost one or a
// few bytes for both.
const (
	eventsFields    = 6
	eventMinFields  = 7
	eventMaxFields  = 11
	minEventSize    = 26 // array, seq, bin8 ID, 1-byte key, op, scope, flags, time
	minVCEntrySize  = 3  // a 1-byte name and a counter
	minArrayElement = 1
)

// checkName validates a node, zone or region name.
func checkName(field, s string, required bool) error {
	switch {
	case required && s == "":
		return errorf(ErrMalformed, "%s is empty", field)
	case len(s) > MaxNameLen:
		return errorf(ErrTooLarge, "%s of %d bytes, limit %d", field, len(s), MaxNameLen)
	}
	return nil
}

// checkEventsHeader validates the fields of f other than Events.
func checkEventsHeader(f *Events) error {
	if err := checkName("origin", f.Origin, true); err != nil {
		return err
	}
	if err := checkName("zone", f.Zone, false); err != nil {
		return err
	}
	return checkName("region", f.Region, false)
}

// checkEvent validates one event as the decoder would.
func checkEvent(ev *Event) error {
	switch {
	case ev.Key == "":
		return errorf(ErrMalformed, "event key is empty")
	case len(ev.Key) > MaxKeyLen:
		return errorf(ErrTooLarge, "event key of %d bytes, limit %d", len(ev.Key), MaxKeyLen)
	case !ev.Op.Valid():
		return errorf(ErrMalformed, "event %q: unknown op %d", ev.Key, ev.Op)
	case !ev.Scope.Valid():
		return errorf(ErrMalformed, "event %q: unknown scope %d", ev.Key, ev.Scope)
	case len(ev.VectorClock) > MaxVectorClock:
		return errorf(ErrTooLarge, "event %q: vector clock of %d entries, limit %d", ev.Key, len(ev.VectorClock), MaxVectorClock)
	}
	if err := checkName("event origin", ev.Origin, false); err != nil {
		return err
	}
	if err := checkName("event zone", ev.Zone, false); err != nil {
		return err
	}
	if err := checkName("event region", ev.Region, false); err != nil {
		return err
	}
	for name := range ev.VectorClock {
		if err := checkName("vector clock name", name, true); err != nil {
			return err
		}
	}
	return nil
}

// AppendEvents appends the body of an Events frame to dst, lz4-compressed
// when compress is set and that makes it smaller. An invalid frame (empty
// origin or key, unknown op or scope) is ErrMalformed, one over a limit
// ErrTooLarge; dst is then returned unchanged. To fill frames up to a
// datagram size, use EventsBuilder or Split instead.
func AppendEvents(dst []byte, f *Events, compress bool) ([]byte, error) {
	if err := checkEventsHeader(f); err != nil {
		return dst, err
	}
	if len(f.Events) > MaxEventsPerFrame {
		return dst, errorf(ErrTooLarge, "%d events, limit %d", len(f.Events), MaxEventsPerFrame)
	}
	for i := range f.Events {
		if err := checkEvent(&f.Events[i]); err != nil {
			return dst, err
		}
	}
	return encodeBody(dst, FrameEvents, compress, func(b []byte) []byte {
		b = appendEventsHeader(b, f)
		b = appendArrayHeader(b, len(f.Events))
		var seq uint64
		var t int64
		for i := range f.Events {
			ev := &f.Events[i]
			b = appendEvent(b, ev, seq, t)
			seq, t = ev.Seq, ev.Time
		}
		return b
	})
}

// appendEventsHeader appends the outer array header and the fields before
// the events.
func appendEventsHeader(b []byte, f *Events) []byte {
	b = appendArrayHeader(b, eventsFields)
	b = appendString(b, f.Origin)
	b = appendUint(b, f.Boot)
	b = appendString(b, f.Zone)
	b = appendString(b, f.Region)
	return appendUint(b, uint64(f.Flags))
}

// appendEvent appends one event, its Seq and Time relative to the previous
// event's.
func appendEvent(b []byte, ev *Event, prevSeq uint64, prevTime int64) []byte {
	fields := eventMinFields
	switch {
	case len(ev.VectorClock) > 0:
		fields = 11
	case ev.Region != "":
		fields = 10
	case ev.Zone != "":
		fields = 9
	case ev.Origin != "":
		fields = 8
	}
	b = appendArrayHeader(b, fields)
	b = appendInt(b, int64(ev.Seq-prevSeq))
	b = appendBin(b, ev.ID[:])
	b = appendString(b, ev.Key)
	b = appendUint(b, uint64(ev.Op))
	b = appendUint(b, uint64(ev.Scope))
	b = appendUint(b, uint64(ev.Flags))
	b = appendInt(b, ev.Time-prevTime)
	if fields > 7 {
		b = appendString(b, ev.Origin)
	}
	if fields > 8 {
		b = appendString(b, ev.Zone)
	}
	if fields > 9 {
		b = appendString(b, ev.Region)
	}
	if fields > 10 {
		b = appendVectorClock(b, ev.VectorClock)
	}
	return b
}

// appendVectorClock writes the clock with its names sorted, so that the
// same clock always encodes to the same bytes.
func appendVectorClock(b []byte, vc map[string]uint64) []byte {
	var buf [MaxVectorClock]string
	names := buf[:0]
	for name := range vc {
		if len(names) == len(buf) {
			break // checkEvent refused larger clocks already
		}
		names = append(names, name)
	}
	slices.Sort(names)
	b = appendMapHeader(b, len(names))
	for _, name := range names {
		b = appendString(b, name)
		b = appendUint(b, vc[name])
	}
	return b
}

// DecodeEvents decodes an Events frame body into f, reusing f.Events.
// On error f.Events is empty and the other fields are unspecified.
func DecodeEvents(body []byte, f *Events) error {
	p, s, err := payload(body, FrameEvents)
	if err != nil {
		f.Events = f.Events[:0]
		return err
	}
	err = decodeEvents(p, f)
	if s != nil {
		s.put()
	}
	if err != nil {
		f.Events = f.Events[:0]
	}
	return err
}

func decodeEvents(p []byte, f *Events) error {
	r := newReader(p, "events")
	keys := keyRefPool.Get().(*[]keyRef)
	r.keys = (*keys)[:0]
	defer func() {
		*keys = r.keys[:0]
		keyRefPool.Put(keys)
	}()
	n := header(&r, eventsFields)
	r.stringInto(&f.Origin, "origin", MaxNameLen)
	if r.err == nil && f.Origin == "" {
		r.fail(ErrMalformed, "origin is empty")
	}
	f.Boot = r.uint("boot")
	r.stringInto(&f.Zone, "zone", MaxNameLen)
	r.stringInto(&f.Region, "region", MaxNameLen)
	f.Flags = r.uint8("flags")
	count := r.arrayLen("events", MaxEventsPerFrame, minEventSize)
	if r.err != nil {
		return r.err
	}
	if cap(f.Events) < count {
		f.Events = make([]Event, count)
	}
	f.Events = f.Events[:count]
	r.what = "event"
	var seq uint64
	var t int64
	for i := range f.Events {
		r.item = i
		ev := &f.Events[i]
		decodeEvent(&r, ev, seq, t)
		if r.err != nil {
			return r.err
		}
		seq, t = ev.Seq, ev.Time
	}
	r.what, r.item = "events", -1
	r.skipFields(n, eventsFields)
	if r.err == nil {
		internKeys(p, r.keys, f.Events)
	}
	return r.err
}

// keyRef locates an event's key in the payload.
type keyRef struct{ off, n int32 }

// keyRefPool holds the decoders' scratch lists of keys.
var keyRefPool = sync.Pool{New: func() any { return new([]keyRef) }}

// internKeys gives every event its key, all cut from one string holding the
// frame's keys back to back: one allocation per frame rather than per event,
// and a kept event retains only the frame's keys, not its payload.
func internKeys(p []byte, refs []keyRef, evs []Event) {
	total := 0
	for _, k := range refs {
		total += int(k.n)
	}
	var b strings.Builder
	b.Grow(total)
	for _, k := range refs {
		b.Write(p[k.off : k.off+k.n])
	}
	all := b.String()
	at := 0
	for i, k := range refs {
		evs[i].Key = all[at : at+int(k.n)]
		at += int(k.n)
	}
}

// decodeEvent decodes one event into ev, overwriting every field.
func decodeEvent(r *reader, ev *Event, prevSeq uint64, prevTime int64) {
	n := header(r, eventMinFields)
	ev.Seq = prevSeq + uint64(r.int("seq"))
	copy(ev.ID[:], r.bin("id", len(ev.ID)))
	key := r.str("key", MaxKeyLen)
	if r.err != nil {
		return
	}
	if len(key) == 0 {
		r.fail(ErrMalformed, "key is empty")
		return
	}
	// The key is made a string by decodeEvents, with the frame's others.
	ev.Key = ""
	r.keys = append(r.keys, keyRef{off: int32(len(r.b[:r.off]) - len(key)), n: int32(len(key))})
	ev.Op = syncbus.Op(r.uint8("op"))
	if r.err == nil && !ev.Op.Valid() {
		r.fail(ErrMalformed, "unknown op %d", ev.Op)
	}
	ev.Scope = syncbus.Scope(r.uint8("scope"))
	if r.err == nil && !ev.Scope.Valid() {
		r.fail(ErrMalformed, "unknown scope %d", ev.Scope)
	}
	ev.Flags = r.uint8("flags")
	ev.Time = prevTime + r.int("time")
	optionalString(r, n > 7, &ev.Origin, "origin")
	optionalString(r, n > 8, &ev.Zone, "zone")
	optionalString(r, n > 9, &ev.Region, "region")
	ev.VectorClock = nil
	if n > 10 {
		ev.VectorClock = decodeVectorClock(r)
	}
	r.skipFields(n, eventMaxFields)
}

// optionalString reads a trailing string field that may be absent.
func optionalString(r *reader, present bool, dst *string, field string) {
	if !present {
		*dst = ""
		return
	}
	r.stringInto(dst, field, MaxNameLen)
}

func decodeVectorClock(r *reader) map[string]uint64 {
	n := r.mapLen("vector clock", MaxVectorClock, minVCEntrySize)
	if n == 0 {
		return nil
	}
	vc := make(map[string]uint64, n)
	for range n {
		name := r.str("vector clock name", MaxNameLen)
		v := r.uint("vector clock counter")
		if r.err != nil {
			return nil
		}
		if len(name) == 0 {
			r.fail(ErrMalformed, "vector clock name is empty")
			return nil
		}
		vc[string(name)] = v
	}
	if len(vc) != n {
		r.fail(ErrMalformed, "vector clock names repeat")
		return nil
	}
	return vc
}
