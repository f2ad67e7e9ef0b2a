package bridge

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// counters are the core's metrics, updated lock-free on the hot paths.
type counters struct {
	published     atomic.Uint64
	duplicates    atomic.Uint64
	acksSent      atomic.Uint64
	acksReceived  atomic.Uint64
	awaitOK       atomic.Uint64
	awaitFailed   atomic.Uint64
	awaitFailFast atomic.Uint64
	relayed       atomic.Uint64
	batches       atomic.Uint64
	publishErrors atomic.Uint64
	sendErrors    atomic.Uint64
	gaps          atomic.Uint64
	reconnects    atomic.Uint64
	// flowStalls counts the deliveries and publishes held until this
	// node's subscriptions had room, flowStallNanos their total time, and
	// flowReleased the times full subscriptions were let go.
	flowStalls     atomic.Uint64
	flowStallNanos atomic.Int64
	flowReleased   atomic.Uint64

	sent, received traffic

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

// drop counts one refused input by reason. Drops are rare on a healthy bus,
// so a mutex is fine.
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
	return maps.Clone(c.drops)
}

// Metrics returns the node's counters; it keeps working after Close. On a
// broker every message goes through the broker, so SentLocal and
// ReceivedLocal count all the broker messages (frames of events, acks and
// presence) and their bytes, and the Remote fields stay 0. Batches counts
// event frames; Relayed the events this node relayed for a gateway;
// DropsByReason the messages refused ("foreign" for anything that is not a
// frame of ours, then wire's reasons: "malformed", "auth", "label",
// "replay", "version", "oversize"; "own-name" for another node using this
// node's name; "slow-consumer" and the like for losses the client
// reported). FlowStalls and FlowStallTime count the deliveries and
// publishes this node held until its full subscriptions had room, and
// FlowReleased the times they were let go after StallTimeout.
func (c *Core) Metrics() syncbus.Metrics {
	if c.err != nil {
		return syncbus.Metrics{}
	}
	ds := c.disp.Stats()
	return syncbus.Metrics{
		Published:      c.c.published.Load(),
		Delivered:      ds.Delivered,
		Coalesced:      ds.Coalesced,
		Dropped:        ds.Dropped,
		Resyncs:        ds.Resyncs,
		Duplicates:     c.c.duplicates.Load(),
		AcksSent:       c.c.acksSent.Load(),
		AcksReceived:   c.c.acksReceived.Load(),
		AwaitSatisfied: c.c.awaitOK.Load(),
		AwaitFailed:    c.c.awaitFailed.Load(),
		AwaitFailFast:  c.c.awaitFailFast.Load(),
		AckLatency:     c.ackLat.Histogram(),
		Relayed:        c.c.relayed.Load(),
		Batches:        c.c.batches.Load(),
		SentLocal:      c.c.sent.snapshot(),
		ReceivedLocal:  c.c.received.snapshot(),
		DropsByReason:  c.c.dropsSnapshot(),
		PublishErrors:  c.c.publishErrors.Load(),
		FlowStalls:     c.c.flowStalls.Load(),
		FlowStallTime:  time.Duration(c.c.flowStallNanos.Load()),
		FlowReleased:   c.c.flowReleased.Load(),
	}
}

// Health is a bridge node's view of itself and its bus.
type Health struct {
	Name, Zone, Region string
	// Healthy is false once the bus is closed, was built with a bad
	// option, or its client gave up for good; Err says why.
	Healthy bool
	Err     error
	// Connected is false while the client is reconnecting.
	Connected bool
	// Members counts known nodes by state, this one included; Zones counts
	// zones with an alive node.
	Alive, Suspect, Left, Failed int
	Zones                        int
	// PendingAwaits counts awaiting calls in flight.
	PendingAwaits int
	// Authenticated is false when the bus runs without SecretKeys.
	Authenticated bool
	// Reconnects counts the reconnections (each resynced every
	// subscription) and Gaps the losses found in a publisher's numbering.
	Reconnects, Gaps uint64
}

// Health reports the node's state.
func (c *Core) Health() Health {
	if c.err != nil {
		return Health{Err: c.err}
	}
	h := Health{
		Name: c.name, Zone: c.zone, Region: c.region,
		Err:           c.check(),
		Connected:     c.connected.Load() && c.failed.Load() == nil,
		PendingAwaits: c.awaits.len(),
		Authenticated: !c.keyring.Empty(),
		Reconnects:    c.c.reconnects.Load(),
		Gaps:          c.c.gaps.Load(),
	}
	h.Healthy = h.Err == nil
	zones := map[string]bool{}
	for _, m := range c.peers.snapshot(c) {
		switch m.State {
		case syncbus.MemberAlive:
			h.Alive++
		case syncbus.MemberSuspect:
			h.Suspect++
		case syncbus.MemberLeft:
			h.Left++
		case syncbus.MemberFailed:
			h.Failed++
		}
		if m.State.Alive() {
			zones[m.Zone] = true
		}
	}
	h.Zones = len(zones)
	return h
}
