package mesh

import (
	"sync"
	"sync/atomic"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/zones"
)

// counters are the bus's metrics, updated lock-free on the hot paths.
type counters struct {
	published      atomic.Uint64
	duplicates     atomic.Uint64
	acksSent       atomic.Uint64
	acksReceived   atomic.Uint64
	awaitOK        atomic.Uint64
	awaitFailed    atomic.Uint64
	awaitFailFast  atomic.Uint64
	retransmits    atomic.Uint64
	repairRequests atomic.Uint64
	relayed        atomic.Uint64
	batches        atomic.Uint64
	publishErrors  atomic.Uint64

	sentLocal, sentRemote         traffic
	receivedLocal, receivedRemote traffic
	sentRepair                    traffic

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

func (c *counters) dropsSnapshot() map[string]uint64 {
	c.dropsMu.Lock()
	defer c.dropsMu.Unlock()
	if len(c.drops) == 0 {
		return nil
	}
	out := make(map[string]uint64, len(c.drops))
	for k, v := range c.drops {
		out[k] = v
	}
	return out
}

// Metrics returns the bus's counters.
func (b *MeshBus) Metrics() syncbus.Metrics {
	ds := b.disp.Stats()
	return syncbus.Metrics{
		Published:      b.c.published.Load(),
		Delivered:      ds.Delivered,
		Coalesced:      ds.Coalesced,
		Dropped:        ds.Dropped,
		Resyncs:        ds.Resyncs,
		Duplicates:     b.c.duplicates.Load(),
		AcksSent:       b.c.acksSent.Load(),
		AcksReceived:   b.c.acksReceived.Load(),
		AwaitSatisfied: b.c.awaitOK.Load(),
		AwaitFailed:    b.c.awaitFailed.Load(),
		AwaitFailFast:  b.c.awaitFailFast.Load(),
		AckLatency:     b.ackLat.Histogram(),
		Retransmits:    b.c.retransmits.Load(),
		RepairRequests: b.c.repairRequests.Load(),
		Relayed:        b.c.relayed.Load(),
		Batches:        b.c.batches.Load(),
		SentLocal:      b.c.sentLocal.snapshot(),
		SentRemote:     b.c.sentRemote.snapshot(),
		ReceivedLocal:  b.c.receivedLocal.snapshot(),
		ReceivedRemote: b.c.receivedRemote.snapshot(),
		SentRepair:     b.c.sentRepair.snapshot(),
		DropsByReason:  b.c.dropsSnapshot(),
		PublishErrors:  b.c.publishErrors.Load(),
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
	// Authenticated is false when the bus runs without SecretKeys.
	Authenticated bool
	// Closed is true after Close.
	Closed bool
}

// Health reports the node's state.
func (b *MeshBus) Health() Health {
	h := Health{
		Name: b.name, Zone: b.zone, Region: b.region,
		Authenticated: !b.keyring.Empty(),
		Closed:        b.closed.Load(),
		PendingAwaits: b.awaits.len(),
	}
	v := b.mustView()
	for _, p := range v.nodes {
		switch p.state {
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
	h.Zones = v.topo.NumZones()
	h.Mode = "direct"
	if v.mode == zones.ModeRelay {
		h.Mode = "relay"
	}
	return h
}
