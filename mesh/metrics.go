package mesh

import (
	"sync"
	"sync/atomic"

	"github.com/warpmesh/warp/syncbus"
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
