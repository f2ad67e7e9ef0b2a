package mesh

import (
	"sync"
	"sync/atomic"

	"github.com/warpmesh/warp/syncbus"
)

// counters are the driver's metrics, updated lock-free on the hot paths.
// The protocol's own counters live in the core, and reach Metrics through
// the snapshot the event loop keeps (MeshBus.stats).
type counters struct {
	published     atomic.Uint64
	duplicates    atomic.Uint64 // relays of an event already relayed here
	awaitOK       atomic.Uint64
	awaitFailed   atomic.Uint64
	awaitFailFast atomic.Uint64
	batches       atomic.Uint64
	publishErrors atomic.Uint64
	localStalls   atomic.Uint64 // publishes held until this node's own subscriptions had room
	localReleased atomic.Uint64 // times this node's own slow subscriptions were let go

	sentLocal, sentRemote         traffic
	receivedLocal, receivedRemote traffic
	sentRepair, sentControl       traffic

	dropsMu sync.Mutex
	drops   map[string]uint64
}

type traffic struct{ messages, bytes atomic.Uint64 }

func (t *traffic) add(n int) {
	t.messages.Add(1)
	t.bytes.Add(uint64(n))
}

func (t *traffic) snapshot() syncbus.Traffic {
	return syncbus.Traffic{Messages: t.messages.Load(), Bytes: t.bytes.Load()}
}

// drop counts one refused input by reason. Drops are rare on a healthy
// cluster, so a mutex is fine here.
func (c *counters) drop(reason string) {
	c.dropsMu.Lock()
	if c.drops == nil {
		c.drops = make(map[string]uint64)
	}
	c.drops[reason]++
	c.dropsMu.Unlock()
}

// dropsSnapshot returns the driver's drops merged with extra (the core's).
func (c *counters) dropsSnapshot(extra ...map[string]uint64) map[string]uint64 {
	c.dropsMu.Lock()
	defer c.dropsMu.Unlock()
	var out map[string]uint64
	add := func(m map[string]uint64) {
		for k, v := range m {
			if out == nil {
				out = make(map[string]uint64)
			}
			out[k] += v
		}
	}
	add(c.drops)
	for _, m := range extra {
		add(m)
	}
	return out
}

// Metrics returns the bus's counters.
func (b *MeshBus) Metrics() syncbus.Metrics {
	ds := b.disp.Stats()
	cs := b.coreStats()
	return syncbus.Metrics{
		Published:      b.c.published.Load(),
		Delivered:      ds.Delivered,
		Coalesced:      ds.Coalesced,
		Dropped:        ds.Dropped,
		Resyncs:        ds.Resyncs,
		Duplicates:     cs.Duplicates + b.c.duplicates.Load(),
		AcksSent:       cs.AcksSent,
		AcksReceived:   cs.AcksReceived,
		AwaitSatisfied: b.c.awaitOK.Load(),
		AwaitFailed:    b.c.awaitFailed.Load(),
		AwaitFailFast:  b.c.awaitFailFast.Load(),
		AckLatency:     b.ackLat.Histogram(),
		Retransmits:    cs.Retransmits,
		RepairRequests: cs.RepairRequests,
		Relayed:        cs.Relayed,
		Batches:        b.c.batches.Load(),
		SentLocal:      b.c.sentLocal.snapshot(),
		SentRemote:     b.c.sentRemote.snapshot(),
		ReceivedLocal:  b.c.receivedLocal.snapshot(),
		ReceivedRemote: b.c.receivedRemote.snapshot(),
		SentRepair:     b.c.sentRepair.snapshot(),
		DropsByReason:  b.c.dropsSnapshot(cs.Drops),
		PublishErrors:  b.c.publishErrors.Load(),
		FlowStalls:     cs.FlowStalls + b.c.localStalls.Load(),
		FlowStallTime:  cs.FlowStallTime,
		FlowReleased:   cs.FlowReleased + b.c.localReleased.Load(),
	}
}

// Health is a node's view of itself and its cluster.
type Health struct {
	Name, Zone, Region string
	// Members counts known nodes by state; Zones counts zones with an
	// alive node.
	Alive, Suspect, Left, Failed int
	Zones                        int
	// Mode is the fanout in use: "direct" or "relay".
	Mode string
	// PendingAwaits counts awaiting calls in flight.
	PendingAwaits int
	// PendingEvents counts published events waiting for the receivers'
	// flow-control credit.
	PendingEvents int
	// ReleasedReceivers counts the alive receivers this node publishes to
	// without waiting for their credit: they held it back for StallTimeout,
	// or are suspect. Each is waited for again once its credit shows it
	// caught up.
	ReleasedReceivers int
	// Authenticated is false when the bus runs without SecretKeys.
	Authenticated bool
	// Closed is true after Close.
	Closed bool
}

// Health reports the node's state.
func (b *MeshBus) Health() Health {
	cs := b.coreStats()
	h := Health{
		Name: b.name, Zone: b.zone, Region: b.region,
		Authenticated: !b.keyring.Empty(),
		Closed:        b.closed.Load(),
		PendingAwaits: cs.PendingAwaits,
		PendingEvents: cs.Pending,

		ReleasedReceivers: cs.Released,
	}
	for _, n := range b.ml.Snapshot().Nodes {
		switch n.State {
		case syncbus.MemberAlive:
			h.Alive++
		case syncbus.MemberSuspect:
			h.Suspect++
		case syncbus.MemberLeft:
			h.Left++
		case syncbus.MemberFailed:
			h.Failed++
		}
	}
	topo := b.topo.Load()
	h.Zones = topo.NumZones()
	h.Mode = "direct"
	if b.opts.Fanout == FanoutRelay || (b.opts.Fanout == FanoutAuto && topo.Size() > b.opts.RelayThreshold) {
		h.Mode = "relay"
	}
	return h
}
