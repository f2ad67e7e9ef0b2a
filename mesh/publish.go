package mesh

import (
	"context"

	"github.com/warpmesh/warp/mesh/internal/protocol"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
	"github.com/warpmesh/warp/zones"
)

// Publish sends an invalidation of key to every node and delivers it to
// this node's own subscriptions before returning. It does not wait for the
// other nodes: the event leaves at once when the bus is idle, or shares a
// datagram with others under load, and lost datagrams are repaired (see the
// package documentation).
//
// Flow control: when a receiver's subscriptions have no room left, the
// event waits in this node's send queue; when that queue is full, Publish
// waits for room, at most MeshOptions.BackpressureTimeout, and then
// returns an error matching syncbus.ErrBackpressure (or ctx's error when
// ctx ends first): the event was then delivered to this node's own
// subscriptions but not sent, and the call may be retried. An event too
// large for one datagram is an error.
func (b *MeshBus) Publish(ctx context.Context, key string, opts ...syncbus.PublishOption) error {
	o := syncbus.ApplyPublishOptions(opts...)
	return b.publish(ctx, key, syncbus.OpInvalidate, &o)
}

// RevokeLease sends the revocation of lease id to every node's lease
// subscriptions. It waits for flow control as Publish does.
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
	if err := b.waitLocalRoom(ctx); err != nil {
		b.c.publishErrors.Add(1)
		return err
	}
	b.c.published.Add(1)
	b.disp.Deliver(ev.ToSync(b.name, b.zone, b.region))
	return b.putEvent(ctx, &ev)
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
	return b.putEvent(ctx, &w)
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
		Time:        b.clock.Now().UnixNano(),
	}
	if o.Region != "" && o.Region != b.region {
		ev.Region = o.Region
	}
	return ev
}

// checkFits reports an event that cannot fit one datagram of this node,
// whatever else travels with it.
func (b *MeshBus) checkFits(ev *wire.Event) error {
	hdr := wire.Events{Origin: b.name, Zone: b.zone, Region: b.region}
	if err := wire.CheckFits(&hdr, ev, wire.DefaultDatagramBudget); err != nil {
		return errTooLarge(err)
	}
	return nil
}

// PublishAndAwait publishes an invalidation of key and returns once
// `replicas` other nodes have applied it (values <= 0 mean 1). When the
// nodes known alive cannot provide that many, it fails at once without
// sending. Otherwise it waits until satisfied, until the alive nodes can no
// longer satisfy it, or until ctx ends (MeshOptions.AckTimeout when ctx has
// no deadline). Every failure matches syncbus.ErrQuorumNotSatisfied and is a
// *syncbus.QuorumError with the figures. An awaited event is never held by
// flow control.
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
	// Fail fast here, before publishing anything, against the core's
	// latest view — unless the membership has moved on since, in which
	// case the core decides once it has the newer view.
	if err := zones.CheckFeasible(b.topo.Load(), req); err != nil && b.topoVersion.Load() == b.ml.Snapshot().Version {
		b.c.awaitFailFast.Add(1)
		b.c.awaitFailed.Add(1)
		return err
	}
	ev := b.newEvent(key, syncbus.OpInvalidate, o)
	if err := b.checkFits(&ev); err != nil {
		b.c.publishErrors.Add(1)
		return err
	}
	b.c.published.Add(1)
	b.disp.Deliver(ev.ToSync(b.name, b.zone, b.region))

	start := b.clock.Now()
	deadline := start.Add(b.opts.AckTimeout)
	if dl, ok := ctx.Deadline(); ok {
		deadline = dl
	}
	r := &awaitReq{
		id: b.awaitID.Add(1), ev: ev, req: req, deadline: deadline,
		report: o.AckReport != nil, start: start,
		done: make(chan protocol.Outcome, 1),
	}
	b.in.putAwait(r)
	var out protocol.Outcome
	select {
	case out = <-r.done:
	case <-ctx.Done():
		b.in.putCancel(r.id, ctx.Err())
		select {
		case out = <-r.done:
		case <-b.loopDone:
			return b.closedWhileAwaiting(r, req)
		}
	case <-b.loopDone:
		select {
		case out = <-r.done:
		default:
			return b.closedWhileAwaiting(r, req)
		}
	}
	if out.Err != nil {
		if out.FailFast {
			b.c.awaitFailFast.Add(1)
		}
		b.c.awaitFailed.Add(1)
		return out.Err
	}
	if o.AckReport != nil {
		*o.AckReport = out.Report
	}
	b.c.awaitOK.Add(1)
	d := b.clock.Now().Sub(start)
	b.ackLat.Observe(d)
	b.rec.AckLatency(req.Kind(), d)
	return nil
}

// closedWhileAwaiting is the error of an awaited publish whose bus closed
// before the loop took it.
func (b *MeshBus) closedWhileAwaiting(r *awaitReq, req zones.Requirement) error {
	b.c.awaitFailed.Add(1)
	return zones.NewTracker(b.topo.Load(), req).Err(syncbus.ErrClosed)
}
