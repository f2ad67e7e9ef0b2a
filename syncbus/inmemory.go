package syncbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// InMemoryBus is a Bus inside one process: a lone node from NewInMemoryBus,
// or one node of an InMemoryNetwork. It implements Bus, PrefixSubscriber,
// MemberLister, Relayer and MetricsReporter with the semantics of every
// Bus in this module; see InMemoryNetwork for how delivery and
// acknowledgements travel. It is safe for concurrent use and starts no
// goroutines.
type InMemoryBus struct {
	net        *InMemoryNetwork
	name       string
	zone       string
	region     string
	ackTimeout time.Duration
	log        *slog.Logger

	disp   *Dispatcher
	ids    *IDGenerator
	dedupe *DedupeWindow // relayed event IDs only

	muted  atomic.Bool
	closed atomic.Bool
	done   chan struct{} // closed by Close; ends awaiting calls

	published      atomic.Uint64
	relayed        atomic.Uint64
	duplicates     atomic.Uint64
	acksSent       atomic.Uint64
	acksReceived   atomic.Uint64
	awaitSatisfied atomic.Uint64
	awaitFailed    atomic.Uint64
	awaitFailFast  atomic.Uint64
	publishErrors  atomic.Uint64
	ackLatency     *LatencyRecorder
}

var (
	_ Bus              = (*InMemoryBus)(nil)
	_ PrefixSubscriber = (*InMemoryBus)(nil)
	_ MemberLister     = (*InMemoryBus)(nil)
	_ Relayer          = (*InMemoryBus)(nil)
	_ MetricsReporter  = (*InMemoryBus)(nil)
)

// NewInMemoryBus returns a lone node named "local" in zone "": it delivers
// to its own subscribers. Having no other node, PublishAndAwait fails fast
// for any number of replicas, while PublishAndAwaitTopology is satisfied by
// one zone (the publisher's own) and fails fast for more.
func NewInMemoryBus() *InMemoryBus {
	// Joining an empty network with default options cannot fail.
	b, _ := NewInMemoryNetwork().Join("local", "")
	return b
}

// Name returns the node's name, the Origin of its events.
func (b *InMemoryBus) Name() string { return b.name }

// Zone returns the node's zone.
func (b *InMemoryBus) Zone() string { return b.zone }

// SetAcking makes the node acknowledge the events it delivers (true, the
// default) or not (false): a muted node still delivers to its subscribers
// but no longer counts toward other nodes' awaiting calls, as a node whose
// acks are lost would. Tests use it to reach the deadline of those calls.
func (b *InMemoryBus) SetAcking(on bool) { b.muted.Store(!on) }

// Publish delivers an invalidation of key to every node's subscriptions.
func (b *InMemoryBus) Publish(ctx context.Context, key string, opts ...PublishOption) error {
	return b.countErr(b.publish(ctx, OpInvalidate, key, opts, 0, 0))
}

// PublishAndAwait publishes like Publish and returns nil once replicas
// other nodes (<= 0 means 1) have acknowledged. When fewer other nodes are
// alive it fails fast without publishing; otherwise it returns a
// *QuorumError when ctx ends (or after the node's ack timeout when ctx has
// no deadline) or the bus closes.
func (b *InMemoryBus) PublishAndAwait(ctx context.Context, key string, replicas int, opts ...PublishOption) error {
	return b.countErr(b.publish(ctx, OpInvalidate, key, opts, QuorumReplicas, replicas))
}

// PublishAndAwaitTopology publishes like Publish and returns nil once the
// event has been applied in minZones zones (<= 0 means 1), the publisher's
// own included, honouring WithZoneQuorum. It fails fast and fails at the
// deadline like PublishAndAwait.
func (b *InMemoryBus) PublishAndAwaitTopology(ctx context.Context, key string, minZones int, opts ...PublishOption) error {
	return b.countErr(b.publish(ctx, OpInvalidate, key, opts, QuorumZones, minZones))
}

// RevokeLease delivers the revocation of lease id to every node's lease
// subscriptions of id.
func (b *InMemoryBus) RevokeLease(ctx context.Context, id string) error {
	return b.countErr(b.publish(ctx, OpLeaseRevoke, id, nil, 0, 0))
}

// publish builds one event and hands it to every alive node; kind 0 means
// no acknowledgements are awaited.
func (b *InMemoryBus) publish(ctx context.Context, op Op, key string, opts []PublishOption, kind QuorumKind, required int) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if err := ValidateKey(key); err != nil {
		return err
	}
	var o PublishOptions
	if len(opts) > 0 { // applying options costs an allocation; skip it when there are none
		o = ApplyPublishOptions(opts...)
	}
	if !o.Scope.Valid() {
		return fmt.Errorf("%w: unknown scope %v", ErrInvalidEvent, o.Scope)
	}
	alive := b.net.snapshot()
	var acks *ackCount
	if kind != 0 {
		acks = newAckCount(kind, required, o.ZoneQuorum, b.name, alive)
		if !acks.feasible() {
			b.awaitFailed.Add(1)
			b.awaitFailFast.Add(1)
			return acks.failure(true, nil)
		}
		if err := ctx.Err(); err != nil {
			b.awaitFailed.Add(1)
			return acks.failure(false, err)
		}
	} else if err := ctx.Err(); err != nil {
		return err
	}

	ev := Event{
		ID:          b.ids.Next(),
		Key:         key,
		Op:          op,
		Origin:      b.name,
		Zone:        b.zone,
		Region:      b.region,
		VectorClock: o.VectorClock,
		Scope:       o.Scope,
		Time:        time.Now(),
	}
	if o.Region != "" {
		ev.Region = o.Region
	}
	b.published.Add(1)
	for _, n := range alive {
		if !n.apply(ev, false) || acks == nil {
			continue
		}
		switch {
		case n == b:
			acks.applied(b.name, b.zone) // the publisher counts in its own zone
		case !n.muted.Load():
			n.acksSent.Add(1)
			b.acksReceived.Add(1)
			acks.applied(n.name, n.zone)
		}
	}
	if acks == nil {
		return nil
	}
	if acks.satisfied() {
		b.awaitSatisfied.Add(1)
		b.ackLatency.Since(ev.Time)
		acks.report(o.AckReport)
		return nil
	}
	return b.wait(ctx, acks)
}

// wait blocks until ctx ends, the ack timeout passes (ctx without deadline)
// or the bus closes. Acks are synchronous, so nothing can satisfy the call
// any more; waiting keeps the behaviour every Bus has.
func (b *InMemoryBus) wait(ctx context.Context, acks *ackCount) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.ackTimeout)
		defer cancel()
	}
	var cause error
	select {
	case <-ctx.Done():
		cause = ctx.Err()
	case <-b.done:
		cause = ErrClosed
	}
	b.awaitFailed.Add(1)
	return acks.failure(false, cause)
}

// apply hands ev to this node's subscriptions; relayed events are dropped
// when their ID was seen. It reports whether the node is open (and so
// applied the event, or had already).
func (b *InMemoryBus) apply(ev Event, relayed bool) bool {
	if b.closed.Load() {
		return false
	}
	if relayed && b.dedupe.Seen(ev.ID) {
		b.duplicates.Add(1)
		return true
	}
	b.disp.Deliver(ev)
	return true
}

// countErr counts a failed publish; calls on a closed bus are not counted.
func (b *InMemoryBus) countErr(err error) error {
	if err != nil && !errors.Is(err, ErrClosed) {
		b.publishErrors.Add(1)
	}
	return err
}

// Relay delivers ev, received from elsewhere, to every node keeping its ID,
// Origin, Zone, Region, Scope, Op, VectorClock and Time. Each node delivers
// a given relayed ID once within its dedupe window. It returns
// ErrInvalidKey or an error matching ErrInvalidEvent for an event that
// cannot be relayed (see ValidateRelayed).
func (b *InMemoryBus) Relay(ctx context.Context, ev Event) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if err := ValidateRelayed(ev); err != nil {
		return b.countErr(err)
	}
	if err := ctx.Err(); err != nil {
		return b.countErr(err)
	}
	if b.dedupe.Contains(ev.ID) {
		// Relayed before, here or by another gateway: every node has it.
		b.duplicates.Add(1)
		return nil
	}
	b.published.Add(1)
	b.relayed.Add(1)
	for _, n := range b.net.snapshot() {
		n.apply(ev, true)
	}
	return nil
}

// Subscribe returns a channel receiving the invalidations of key; see
// Dispatcher.Subscribe.
func (b *InMemoryBus) Subscribe(ctx context.Context, key string) (<-chan Event, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	return b.disp.Subscribe(ctx, key)
}

// Unsubscribe ends the subscription ch of key and closes ch; a second call
// returns nil.
func (b *InMemoryBus) Unsubscribe(_ context.Context, key string, ch <-chan Event) error {
	if b.closed.Load() {
		return ErrClosed
	}
	return b.disp.Unsubscribe(key, ch)
}

// SubscribePrefix returns a channel receiving the invalidations of every
// key starting with prefix ("" for every key); see
// Dispatcher.SubscribePrefix.
func (b *InMemoryBus) SubscribePrefix(ctx context.Context, prefix string) (<-chan Event, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	return b.disp.SubscribePrefix(ctx, prefix)
}

// UnsubscribePrefix ends the prefix subscription ch and closes ch.
func (b *InMemoryBus) UnsubscribePrefix(_ context.Context, prefix string, ch <-chan Event) error {
	if b.closed.Load() {
		return ErrClosed
	}
	return b.disp.UnsubscribePrefix(prefix, ch)
}

// SubscribeLease returns a channel receiving the revocations of lease id.
func (b *InMemoryBus) SubscribeLease(ctx context.Context, id string) (<-chan Event, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	return b.disp.SubscribeLease(ctx, id)
}

// UnsubscribeLease ends the lease subscription ch and closes ch.
func (b *InMemoryBus) UnsubscribeLease(_ context.Context, id string, ch <-chan Event) error {
	if b.closed.Load() {
		return ErrClosed
	}
	return b.disp.UnsubscribeLease(id, ch)
}

// Members returns the nodes of the network, this one included, sorted by
// name; nil once the bus is closed.
func (b *InMemoryBus) Members() []Member {
	if b.closed.Load() {
		return nil
	}
	return b.net.Members()
}

// Metrics returns the node's counters. It keeps working after Close.
func (b *InMemoryBus) Metrics() Metrics {
	ds := b.disp.Stats()
	return Metrics{
		Published:      b.published.Load(),
		Delivered:      ds.Delivered,
		Coalesced:      ds.Coalesced,
		Dropped:        ds.Dropped,
		Resyncs:        ds.Resyncs,
		Duplicates:     b.duplicates.Load(),
		AcksSent:       b.acksSent.Load(),
		AcksReceived:   b.acksReceived.Load(),
		AwaitSatisfied: b.awaitSatisfied.Load(),
		AwaitFailed:    b.awaitFailed.Load(),
		AwaitFailFast:  b.awaitFailFast.Load(),
		AckLatency:     b.ackLatency.Histogram(),
		Relayed:        b.relayed.Load(),
		PublishErrors:  b.publishErrors.Load(),
	}
}

// Close leaves the network, ends the node's awaiting calls and closes every
// subscription channel. Afterwards every method returns ErrClosed (Members
// returns nil; Metrics keeps working). A second call returns nil.
func (b *InMemoryBus) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	b.net.leave(b)
	close(b.done)
	b.disp.Close()
	b.log.Debug("left in-memory network")
	return nil
}
