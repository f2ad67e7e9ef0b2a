package mesh

import (
	"context"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
	"github.com/warpmesh/warp/zones"
)

// Publish sends an invalidation of key to every node and delivers it to
// this node's own subscriptions before returning. It does not wait for the
// other nodes: the event leaves at once when the bus is idle, or shares a
// datagram with others under load, and lost datagrams are repaired (see the
// package documentation). An event too large for one datagram is an error.
func (b *MeshBus) Publish(ctx context.Context, key string, opts ...syncbus.PublishOption) error {
	o := syncbus.ApplyPublishOptions(opts...)
	return b.publish(ctx, key, syncbus.OpInvalidate, &o)
}

// RevokeLease sends the revocation of lease id to every node's lease
// subscriptions.
func (b *MeshBus) RevokeLease(ctx context.Context, id string) error {
	return b.publish(ctx, id, syncbus.OpLeaseRevoke, &syncbus.PublishOptions{})
}

func (b *MeshBus) publish(ctx context.Context, key string, op syncbus.Op, o *syncbus.PublishOptions) error {
	if err := b.checkOpen(ctx); err != nil {
		return err
	}
	if err := syncbus.ValidateKey(key); err != nil {
		return err
	}
	ev := b.newEvent(key, op, o)
	if err := b.checkFits(&ev); err != nil {
		b.c.publishErrors.Add(1)
		return err
	}
	b.c.published.Add(1)
	b.deliverLocal(&ev)
	return b.out.enqueue(ctx, &ev)
}

// Relay republishes an event received elsewhere (by a gateway) keeping its
// ID, origin, zone, region, scope, vector clock and time. Receivers drop an
// ID they saw in the last syncbus.DefaultDedupeWindow relayed events, so
// several gateways relaying one event deliver it once.
func (b *MeshBus) Relay(ctx context.Context, ev syncbus.Event) error {
	if err := b.checkOpen(ctx); err != nil {
		return err
	}
	if err := syncbus.ValidateRelayed(ev); err != nil {
		return err
	}
	if b.relayed.Seen(ev.ID) {
		b.c.duplicates.Add(1)
		return nil // already relayed or received: delivering again would duplicate it
	}
	w := wire.FromSync(&ev, b.name, b.zone, b.region)
	w.Flags = wire.EventRelayed
	if err := b.checkFits(&w); err != nil {
		b.c.publishErrors.Add(1)
		return err
	}
	b.c.published.Add(1)
	b.disp.Deliver(ev)
	return b.out.enqueue(ctx, &w)
}

// newEvent builds the wire form of a new event published here. Origin and
// Zone stay empty (they are the frame's); Region is set only when
// WithRegion overrides ours.
func (b *MeshBus) newEvent(key string, op syncbus.Op, o *syncbus.PublishOptions) wire.Event {
	ev := wire.Event{
		ID:          b.ids.Next(),
		Key:         key,
		Op:          op,
		Scope:       o.Scope,
		VectorClock: o.VectorClock,
		Time:        time.Now().UnixNano(),
	}
	if o.Region != "" && o.Region != b.region {
		ev.Region = o.Region
	}
	return ev
}

// deliverLocal hands an event published here to this node's subscriptions.
func (b *MeshBus) deliverLocal(ev *wire.Event) {
	b.disp.Deliver(ev.ToSync(b.name, b.zone, b.region))
}

// PublishAndAwait publishes an invalidation of key and returns once
// `replicas` other nodes have applied it (values <= 0 mean 1). When the
// nodes known alive cannot provide that many, it fails at once without
// sending. Otherwise it waits until satisfied, until the alive nodes can no
// longer satisfy it, or until ctx ends (MeshOptions.AckTimeout when ctx has
// no deadline). Every failure matches syncbus.ErrQuorumNotSatisfied and is a
// *syncbus.QuorumError with the figures.
func (b *MeshBus) PublishAndAwait(ctx context.Context, key string, replicas int, opts ...syncbus.PublishOption) error {
	o := syncbus.ApplyPublishOptions(opts...)
	return b.publishAndAwait(ctx, key, zones.Replicas(replicas), &o)
}

// PublishAndAwaitTopology publishes an invalidation of key and returns once
// it has been applied in minZones distinct zones, this node's zone
// included (values <= 0 mean 1). With syncbus.WithZoneQuorum(q), a zone
// counts once q of its nodes (or all its alive nodes, if fewer) applied it.
// Failures are as for PublishAndAwait.
func (b *MeshBus) PublishAndAwaitTopology(ctx context.Context, key string, minZones int, opts ...syncbus.PublishOption) error {
	o := syncbus.ApplyPublishOptions(opts...)
	return b.publishAndAwait(ctx, key, zones.Zones(minZones).WithZoneQuorum(o.ZoneQuorum), &o)
}

func (b *MeshBus) publishAndAwait(ctx context.Context, key string, req zones.Requirement, o *syncbus.PublishOptions) error {
	if err := b.checkOpen(ctx); err != nil {
		return err
	}
	if err := syncbus.ValidateKey(key); err != nil {
		return err
	}
	v := b.mustView()
	if err := zones.CheckFeasible(v.topo, req); err != nil {
		b.c.awaitFailFast.Add(1)
		b.c.awaitFailed.Add(1)
		return err
	}
	ev := b.newEvent(key, syncbus.OpInvalidate, o)
	ev.Flags = wire.EventAckWanted
	if err := b.checkFits(&ev); err != nil {
		b.c.publishErrors.Add(1)
		return err
	}
	ev.Seq = b.num.take(1)
	b.sendBuf.add(&ev)
	b.c.published.Add(1)
	b.deliverLocal(&ev)

	start := time.Now()
	a := newAwait(&ev, zones.NewTracker(v.topo, req), start)
	var p plan
	p.make(v, zones.Spread(ev.ID), nil)
	for _, t := range p.targets {
		if t.Relay {
			if a.relays == nil {
				a.relays = make(map[string]string)
			}
			a.relays[t.Zone] = t.Node
		}
	}
	b.awaits.add(a)
	defer b.awaits.remove(a.seq)
	b.sendAwaited(v, a, &p)
	b.num.sent(a.seq)
	b.awaits.decideNow(a) // the publisher's own zone may be all that was asked

	timeout := b.opts.AckTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()

	var cause error
	select {
	case <-a.done:
	case <-ctx.Done():
		cause = ctx.Err()
	case <-timer.C:
		cause = context.DeadlineExceeded
	case <-b.done:
		cause = syncbus.ErrClosed
	}
	err := b.awaits.finish(a, cause, o.AckReport)
	if err != nil {
		b.c.awaitFailed.Add(1)
		return err
	}
	b.c.awaitOK.Add(1)
	b.ackLat.Since(start)
	return nil
}

// checkFits reports an event that cannot fit one datagram of this node,
// whatever else travels with it.
func (b *MeshBus) checkFits(ev *wire.Event) error {
	hdr := b.frameHeader(0)
	if err := wire.CheckFits(&hdr, ev, wire.DefaultDatagramBudget); err != nil {
		return errTooLarge(err)
	}
	return nil
}
