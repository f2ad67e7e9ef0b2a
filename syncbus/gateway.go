package syncbus

import "context"

// What a gateway needs from the two buses it joins (package bridge): to see
// every event of one bus, to tell the events a gateway relayed into that bus
// from the ones published there (so that it never sends an event back where
// it came from), and to republish into the other bus keeping each event's
// identity (Relayer).
//
// Relay semantics, the same on every Bus of this module: Relay(ctx, ev)
// enters ev into the bus as if its origin had published it there, keeping
// its ID, Origin, Zone, Region, Scope, Op, VectorClock and Time. Every node
// of the bus — the relaying node's own subscriptions included, exactly like
// a publisher's — delivers it once: each node remembers the IDs of relayed
// events in a dedupe window (its size is an option of every bus; the
// default is DefaultDedupeWindow) and drops an ID it holds, whether the
// event was relayed by another gateway or by itself before. A Relay of an
// ID the relaying node already holds returns nil and changes nothing.
// Relay does not wait for acknowledgements, and never relays back: it is
// the gateway's job, with AllSubscriber.Relayed, not to hand a bus what
// came out of it.

// AllSubscriber is implemented by buses that a gateway can read from: every
// Bus in this module.
type AllSubscriber interface {
	// SubscribeAll returns a channel receiving every event the node
	// delivers — invalidations of every key and lease revocations,
	// published on this bus or relayed into it — with the buffer and the
	// overflow resync (Key "") of a prefix subscription.
	SubscribeAll(ctx context.Context) (<-chan Event, error)
	// UnsubscribeAll ends an all-events subscription and closes its
	// channel; a second call returns nil.
	UnsubscribeAll(ctx context.Context, ch <-chan Event) error
	// Relayed reports whether the event with this ID reached the node
	// through Relay (on this node or another one) rather than from a
	// publisher of this bus. A node records the ID before it delivers the
	// event, so a reader of SubscribeAll gets the right answer for an event
	// it just received, as long as the node's dedupe window still holds
	// the ID (size the window for the gateway's lag).
	Relayed(id EventID) bool
}

// Contains reports whether id is in the window, without recording it.
func (w *DedupeWindow) Contains(id EventID) bool {
	if id.IsZero() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.seen[id]
	return ok
}

// Size returns how many IDs the window remembers at most.
func (w *DedupeWindow) Size() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return cap(w.ring)
}

var _ AllSubscriber = (*InMemoryBus)(nil)

// SubscribeAll returns a channel receiving every event this node delivers,
// lease revocations and relayed events included; see
// Dispatcher.SubscribeAll.
func (b *InMemoryBus) SubscribeAll(ctx context.Context) (<-chan Event, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	return b.disp.SubscribeAll(ctx)
}

// UnsubscribeAll ends the all-events subscription ch and closes ch.
func (b *InMemoryBus) UnsubscribeAll(_ context.Context, ch <-chan Event) error {
	if b.closed.Load() {
		return ErrClosed
	}
	return b.disp.UnsubscribeAll(ch)
}

// Relayed reports whether the event with this ID was relayed into the
// network (through this node or another) as far as this node's dedupe
// window (WithDedupeWindow) remembers.
func (b *InMemoryBus) Relayed(id EventID) bool { return b.dedupe.Contains(id) }
