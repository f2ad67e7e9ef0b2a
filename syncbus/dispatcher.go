package syncbus

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultPrefixBuffer is how many events a prefix subscription holds
	// while its reader is away, unless DispatcherConfig says otherwise:
	// about 1 MiB of channel buffer, allocated when the subscription is
	// made. A bus with flow control (the mesh) grants its publishers credit
	// from this room, so it needs to cover only the events that arrive in
	// the time credit takes to come back — 8192 lets a reader on loopback
	// take several hundred thousand events a second. (NATS's pending limit
	// of 65 536 messages bounds a queue that grows as needed; this one is
	// a preallocated channel.)
	DefaultPrefixBuffer = 8192
	// MaxPrefixBuffer bounds DispatcherConfig.PrefixBuffer: every prefix
	// subscription allocates its whole buffer up front.
	MaxPrefixBuffer = 1 << 16
)

// DispatcherConfig configures a Dispatcher. The zero value is ready to use.
type DispatcherConfig struct {
	// PrefixBuffer is how many events a prefix subscription holds while its
	// reader is away; one more slot is kept for the resync that reports an
	// overflow. 0 means DefaultPrefixBuffer; it must not exceed
	// MaxPrefixBuffer.
	PrefixBuffer int
}

// DispatchStats are a Dispatcher's counters since it was created; they
// feed the matching fields of Metrics.
type DispatchStats struct {
	// Delivered counts real events (not resyncs) put into subscription
	// channels, one per subscription, including events later replaced by a
	// newer one.
	Delivered uint64
	// Coalesced counts events an exact-key or lease subscription never saw
	// because a newer one replaced them, and resyncs merged into an event
	// or resync already waiting.
	Coalesced uint64
	// Dropped counts events a prefix subscription could not hold.
	Dropped uint64
	// Resyncs counts resync events put into subscription channels.
	Resyncs uint64
	// Subscriptions is the number of open subscriptions.
	Subscriptions int
}

// subKind keeps the three subscription spaces apart: a key "lease:x" and a
// lease "x" live in different maps and never meet.
type subKind uint8

const (
	kindKey subKind = iota
	kindPrefix
	kindLease
)

// subscription is one channel handed to a subscriber.
//
// Senders hold the dispatcher's read lock and the subscription's own mutex;
// closing needs the dispatcher's write lock. So a channel is never sent to
// after it is closed, and two senders never race on one channel: that is
// what lets the replace-the-held-event and reserved-resync-slot logic below
// use plain sends that cannot block.
type subscription struct {
	kind subKind
	key  string
	ch   chan Event
	mu   sync.Mutex
	// resyncPending is true while a prefix subscription's overflow resync
	// is unread; events are dropped (not queued) behind it, since it covers
	// them, until the reader has emptied the channel.
	resyncPending bool
	// stop detaches the context.AfterFunc that ends the subscription when
	// its ctx is cancelled.
	stop func() bool
	// all marks an all-events subscription (SubscribeAll): a prefix
	// subscription of "" that lease revocations reach too.
	all bool
	// full is set, with mu held, by the delivery that leaves a prefix
	// subscription without room, and cleared by the first look that finds
	// room again (see markFull); nfull counts the subscriptions whose full
	// is set. A reader taking events cannot clear it: the dispatcher does
	// not see reads.
	full  bool
	nfull *atomic.Int64
}

// Dispatcher is the registry of one node's subscriptions and routes each
// received event to the ones it matches. Every Bus in this module keeps its
// local subscriptions in one.
//
// Routing: OpInvalidate reaches exact-key subscriptions of ev.Key and prefix
// subscriptions whose prefix ev.Key starts with; OpLeaseRevoke reaches lease
// subscriptions of the lease ID in ev.Key only. Deliver never blocks:
//
//   - An exact-key or lease subscription has a one-event channel that keeps
//     the newest event while its reader is away (the older one is replaced
//     and counted as coalesced). "Newest" is the last to arrive, except that
//     an event arriving late (repaired after a loss) never displaces one its
//     origin published after it.
//   - A prefix subscription has a bounded buffer. When it is full, the
//     subscription gets one OpResync event (Key = its prefix) instead of the
//     events it cannot hold; those are counted as dropped, and delivery
//     resumes once the reader has read that resync: the events that came
//     meanwhile are covered by it (its reader flushes after they happened),
//     so one overflow episode costs the reader one resync.
//
// A Dispatcher starts no goroutines. Cancelling a subscription's ctx ends
// it through context.AfterFunc. It is safe for concurrent use.
type Dispatcher struct {
	bufSize int

	mu         sync.RWMutex
	closed     bool
	keys       map[string][]*subscription
	leases     map[string][]*subscription
	prefixes   map[string][]*subscription
	prefixLens []int // distinct prefix lengths, ascending
	byChan     map[<-chan Event]*subscription
	bounded    []*subscription // the prefix subscriptions, for Room
	alls       []*subscription // all-events subscriptions, also in prefixes[""]

	// full counts the prefix subscriptions marked full: every one without
	// room is, so HasRoom answers with one load while it is zero.
	full atomic.Int64

	delivered atomic.Uint64
	coalesced atomic.Uint64
	dropped   atomic.Uint64
	resyncs   atomic.Uint64
}

// NewDispatcher returns an empty Dispatcher. It fails only for a
// PrefixBuffer out of range.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	switch {
	case cfg.PrefixBuffer == 0:
		cfg.PrefixBuffer = DefaultPrefixBuffer
	case cfg.PrefixBuffer < 0 || cfg.PrefixBuffer > MaxPrefixBuffer:
		return nil, fmt.Errorf("syncbus: prefix buffer %d out of range [1, %d]", cfg.PrefixBuffer, MaxPrefixBuffer)
	}
	return &Dispatcher{
		bufSize:  cfg.PrefixBuffer,
		keys:     make(map[string][]*subscription),
		leases:   make(map[string][]*subscription),
		prefixes: make(map[string][]*subscription),
		byChan:   make(map[<-chan Event]*subscription),
	}, nil
}

// PrefixBuffer returns the number of events a prefix subscription holds.
func (d *Dispatcher) PrefixBuffer() int { return d.bufSize }

// Subscribe returns a channel that receives the OpInvalidate events of key.
// The channel holds one event: while the reader is away, a newer event
// replaces the one waiting. It is closed, exactly once, by Unsubscribe, by
// the cancellation of ctx or by Close.
func (d *Dispatcher) Subscribe(ctx context.Context, key string) (<-chan Event, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	return d.subscribe(ctx, kindKey, key)
}

// SubscribePrefix returns a channel that receives the OpInvalidate events of
// every key that starts with prefix; the empty prefix matches every key.
// The channel holds PrefixBuffer events, then one resync (Key = prefix)
// standing for everything it could not hold.
func (d *Dispatcher) SubscribePrefix(ctx context.Context, prefix string) (<-chan Event, error) {
	return d.subscribe(ctx, kindPrefix, prefix)
}

// SubscribeLease returns a channel that receives the OpLeaseRevoke events of
// lease id, with the same one-event channel as Subscribe.
func (d *Dispatcher) SubscribeLease(ctx context.Context, id string) (<-chan Event, error) {
	if err := ValidateKey(id); err != nil {
		return nil, err
	}
	return d.subscribe(ctx, kindLease, id)
}

func (d *Dispatcher) subscribe(ctx context.Context, kind subKind, key string) (<-chan Event, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	all := kind == kindAll
	if all {
		kind, key = kindPrefix, ""
	}
	size := 1
	if kind == kindPrefix {
		size = d.bufSize + 1 // the extra slot is reserved for the overflow resync
	}
	s := &subscription{kind: kind, key: key, ch: make(chan Event, size), all: all, nfull: &d.full}

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	switch kind {
	case kindKey:
		d.keys[key] = append(d.keys[key], s)
	case kindLease:
		d.leases[key] = append(d.leases[key], s)
	case kindPrefix:
		if len(d.prefixes[key]) == 0 {
			d.addPrefixLen(len(key))
		}
		d.prefixes[key] = append(d.prefixes[key], s)
		d.bounded = append(d.bounded, s)
		if all {
			d.alls = append(d.alls, s)
		}
	}
	d.byChan[s.ch] = s
	// The callback runs in its own goroutine only if ctx is cancelled; it
	// waits for the lock we hold, so s.stop is set before it can look.
	s.stop = context.AfterFunc(ctx, func() { d.cancel(s) })
	return s.ch, nil
}

// Unsubscribe ends the exact-key subscription ch of key and closes ch. It
// returns nil, doing nothing, when ch is not (or no longer) a subscription
// of key, so calling it twice, or after ctx ended the subscription, is safe.
func (d *Dispatcher) Unsubscribe(key string, ch <-chan Event) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	return d.unsubscribe(kindKey, key, ch)
}

// UnsubscribePrefix ends the prefix subscription ch of prefix, like
// Unsubscribe.
func (d *Dispatcher) UnsubscribePrefix(prefix string, ch <-chan Event) error {
	return d.unsubscribe(kindPrefix, prefix, ch)
}

// UnsubscribeLease ends the lease subscription ch of lease id, like
// Unsubscribe.
func (d *Dispatcher) UnsubscribeLease(id string, ch <-chan Event) error {
	if err := ValidateKey(id); err != nil {
		return err
	}
	return d.unsubscribe(kindLease, id, ch)
}

func (d *Dispatcher) unsubscribe(kind subKind, key string, ch <-chan Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if ch == nil {
		return nil
	}
	s, ok := d.byChan[ch]
	if !ok || s.kind != kind || s.key != key {
		return nil
	}
	d.removeLocked(s)
	return nil
}

// cancel is the AfterFunc of a subscription whose ctx ended.
func (d *Dispatcher) cancel(s *subscription) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed && d.byChan[s.ch] == s {
		d.removeLocked(s)
	}
}

// removeLocked unregisters s and closes its channel. The caller holds d.mu
// for writing and has checked that s is registered, which is what makes the
// close happen exactly once.
func (d *Dispatcher) removeLocked(s *subscription) {
	delete(d.byChan, s.ch)
	var m map[string][]*subscription
	switch s.kind {
	case kindKey:
		m = d.keys
	case kindLease:
		m = d.leases
	default:
		m = d.prefixes
	}
	// Build a new slice rather than shifting in place, so the backing array
	// a slow reader of the old slice might hold is never rewritten.
	old := m[s.key]
	if len(old) == 1 {
		delete(m, s.key)
		if s.kind == kindPrefix {
			d.removePrefixLen(len(s.key))
		}
	} else {
		next := make([]*subscription, 0, len(old)-1)
		for _, o := range old {
			if o != s {
				next = append(next, o)
			}
		}
		m[s.key] = next
	}
	if s.all {
		d.alls = withoutSub(d.alls, s)
	}
	if s.kind == kindPrefix {
		d.bounded = withoutSub(d.bounded, s)
		s.mu.Lock()
		s.clearFull()
		s.mu.Unlock()
	}
	s.stop()
	close(s.ch)
}

// addPrefixLen records that a prefix of length n now has subscribers.
// Deliver looks up one map entry per distinct length instead of testing
// every prefix.
func (d *Dispatcher) addPrefixLen(n int) {
	i, found := slices.BinarySearch(d.prefixLens, n)
	if !found {
		d.prefixLens = slices.Insert(d.prefixLens, i, n)
	}
}

// removePrefixLen forgets length n once no prefix of that length is left.
func (d *Dispatcher) removePrefixLen(n int) {
	for p := range d.prefixes {
		if len(p) == n {
			return
		}
	}
	if i, found := slices.BinarySearch(d.prefixLens, n); found {
		d.prefixLens = slices.Delete(d.prefixLens, i, i+1)
	}
}

// deliverCounts accumulates one Deliver's counters so the shared atomics
// are touched once per call, not once per subscription.
type deliverCounts struct {
	delivered, coalesced, dropped, resyncs uint64
}

func (d *Dispatcher) add(c *deliverCounts) {
	if c.delivered > 0 {
		d.delivered.Add(c.delivered)
	}
	if c.coalesced > 0 {
		d.coalesced.Add(c.coalesced)
	}
	if c.dropped > 0 {
		d.dropped.Add(c.dropped)
	}
	if c.resyncs > 0 {
		d.resyncs.Add(c.resyncs)
	}
}

// Deliver hands ev to every subscription it matches and returns how many
// received it (as a new or replacing event; a prefix subscription that
// dropped it is not counted). Events with an empty key, OpResync or an
// unknown Op match nothing. Deliver never blocks and does not allocate for
// exact-key and lease subscriptions.
//
// Every subscription receives the same ev, so ev.VectorClock is shared
// between them and must not be modified afterwards.
func (d *Dispatcher) Deliver(ev Event) int {
	if ev.Key == "" {
		return 0
	}
	var c deliverCounts
	d.mu.RLock()
	if !d.closed {
		switch ev.Op {
		case OpInvalidate:
			for _, s := range d.keys[ev.Key] {
				s.offerNewest(&ev, &c)
			}
			for _, n := range d.prefixLens {
				if n > len(ev.Key) {
					break
				}
				for _, s := range d.prefixes[ev.Key[:n]] {
					s.offerBuffered(&ev, d.bufSize, &c)
				}
			}
		case OpLeaseRevoke:
			for _, s := range d.leases[ev.Key] {
				s.offerNewest(&ev, &c)
			}
			for _, s := range d.alls {
				s.offerBuffered(&ev, d.bufSize, &c)
			}
		}
	}
	d.mu.RUnlock()
	d.add(&c)
	return int(c.delivered)
}

// Resync hands every subscription one OpResync event with Key set to the
// subscription's key, prefix or lease ID and Origin set to origin (the node
// whose events may be missing, or ""). A bus calls it when it may have lost
// events. A subscription with an event or resync already waiting does not
// get another one (counted as coalesced): what waits already makes its
// reader drop what the subscription covers. Resync returns how many
// subscriptions received one.
func (d *Dispatcher) Resync(origin string) int {
	var c deliverCounts
	now := time.Now()
	d.mu.RLock()
	if !d.closed {
		for _, s := range d.byChan {
			ev := Event{Key: s.key, Op: OpResync, Origin: origin, Time: now}
			if s.kind == kindPrefix {
				s.offerBufferedResync(&ev, d.bufSize, &c)
			} else {
				s.offerResync(&ev, &c)
			}
		}
	}
	d.mu.RUnlock()
	d.add(&c)
	return int(c.resyncs)
}

// offerNewest puts ev into a one-event channel, replacing the event that
// waits there, if any.
func (s *subscription) offerNewest(ev *Event, c *deliverCounts) {
	s.mu.Lock()
	select {
	case s.ch <- *ev:
	default:
		select {
		case held := <-s.ch:
			c.coalesced++
			if newerOfSameOrigin(&held, ev) {
				// ev arrived late (it was repaired, or took a slower path):
				// the waiting event is the newest, and keeps its options.
				ev = &held
			}
		default: // the reader took it in the meantime
		}
		// The channel is empty now and only senders, serialised by s.mu,
		// fill it, so this send succeeds; the default case is a guard.
		select {
		case s.ch <- *ev:
		default:
			c.coalesced++
		}
	}
	s.mu.Unlock()
	c.delivered++
}

// offerResync puts a resync into a one-event channel unless something
// already waits there.
// newerOfSameOrigin reports whether held was published after ev by the same
// node: arrival order is not publication order once lost events are
// repaired, but one node's clock orders its own events.
func newerOfSameOrigin(held, ev *Event) bool {
	return held.Op == ev.Op && held.Origin == ev.Origin && held.Time.After(ev.Time)
}

func (s *subscription) offerResync(ev *Event, c *deliverCounts) {
	s.mu.Lock()
	select {
	case s.ch <- *ev:
		c.resyncs++
	default:
		c.coalesced++
	}
	s.mu.Unlock()
}

// offerBuffered puts ev into a prefix subscription's buffer, or reports the
// overflow with one resync in the reserved slot.
//
// Invariant: while resyncPending is false, len(ch) <= size, so the reserved
// slot (capacity size+1) is free for the resync. While it is true, the
// overflow resync waits unread at the end of the channel and nothing is
// added behind it: every event that arrives meanwhile is dropped, because
// the resync covers it — the reader flushes what the subscription covers
// when it reads the resync, which is after that event. The flag clears
// when the reader has emptied the channel, resync included, so one overflow
// episode costs the reader exactly one resync, however long it stays slow.
func (s *subscription) offerBuffered(ev *Event, size int, c *deliverCounts) {
	s.mu.Lock()
	n := len(s.ch)
	if s.resyncPending {
		if n > 0 {
			c.dropped++
			s.mu.Unlock()
			return
		}
		s.resyncPending = false
	}
	if n < size {
		s.ch <- *ev
		c.delivered++
	} else {
		s.ch <- Event{Key: s.key, Op: OpResync, Time: time.Now()}
		s.resyncPending = true
		c.dropped++
		c.resyncs++
	}
	s.markFull(n+1, size)
	s.mu.Unlock()
}

// offerBufferedResync puts a resync into a prefix subscription's buffer,
// unless an overflow resync is still unread (it covers this loss too).
func (s *subscription) offerBufferedResync(ev *Event, size int, c *deliverCounts) {
	s.mu.Lock()
	n := len(s.ch)
	if s.resyncPending {
		if n > 0 {
			c.coalesced++
			s.mu.Unlock()
			return
		}
		s.resyncPending = false
	}
	s.ch <- *ev
	if n == size {
		// It took the reserved slot: behave as after an overflow.
		s.resyncPending = true
	}
	s.markFull(n+1, size)
	c.resyncs++
	s.mu.Unlock()
}

// room returns how many more events a prefix subscription takes before it
// overflows: none while its overflow resync is unread. Finding room, it
// clears the subscription's full mark.
func (s *subscription) room(size int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roomLocked(size)
}

// roomLocked is room for a caller that holds s.mu.
func (s *subscription) roomLocked(size int) int {
	n := len(s.ch)
	if s.resyncPending {
		if n > 0 {
			return 0
		}
		s.resyncPending = false // the reader has read the resync
	}
	r := max(size-n, 0)
	if r > 0 {
		s.clearFull()
	}
	return r
}

// Close ends every subscription, closing each channel exactly once. Later
// calls to Subscribe, SubscribePrefix, SubscribeLease and the Unsubscribe
// methods return ErrClosed; Deliver and Resync do nothing. Calling Close
// again does nothing.
func (d *Dispatcher) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	for _, s := range d.byChan {
		s.stop()
		close(s.ch)
	}
	clear(d.byChan)
	clear(d.keys)
	clear(d.leases)
	clear(d.prefixes)
	d.prefixLens = nil
	d.bounded = nil
	d.full.Store(0)
}

// Stats returns the counters and the number of open subscriptions.
func (d *Dispatcher) Stats() DispatchStats {
	d.mu.RLock()
	n := len(d.byChan)
	d.mu.RUnlock()
	return DispatchStats{
		Delivered:     d.delivered.Load(),
		Coalesced:     d.coalesced.Load(),
		Dropped:       d.dropped.Load(),
		Resyncs:       d.resyncs.Load(),
		Subscriptions: n,
	}
}
