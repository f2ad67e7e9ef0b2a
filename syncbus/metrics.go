package syncbus

import "time"

// Metrics are a bus's counters since it was constructed. Every Bus in this
// module returns them from Metrics(). Counters a bus has no use for stay 0.
type Metrics struct {
	// Published counts events this node published (Publish, the awaiting
	// calls, RevokeLease and Relay).
	Published uint64
	// Delivered counts events handed to subscriptions, one per subscription
	// (resyncs are counted in Resyncs instead).
	Delivered uint64
	// Coalesced counts events an exact-key subscription did not receive
	// because a newer event of its key replaced them while it was not read,
	// and resyncs merged into an event or resync already waiting.
	Coalesced uint64
	// Dropped counts events a prefix subscription could not hold; each
	// overflow is reported to it as a resync.
	Dropped uint64
	// Resyncs counts resync events handed to subscriptions.
	Resyncs uint64
	// Duplicates counts received events that were already delivered.
	Duplicates uint64

	// AcksSent and AcksReceived count acknowledgements (one per acking
	// node and event, however they were packed).
	AcksSent     uint64
	AcksReceived uint64
	// AwaitSatisfied and AwaitFailed count awaiting calls by outcome;
	// AwaitFailFast counts the failures returned without waiting.
	AwaitSatisfied uint64
	AwaitFailed    uint64
	AwaitFailFast  uint64
	// AckLatency is the time from publish to satisfaction of awaiting calls.
	AckLatency Histogram

	// Retransmits counts events sent again: unacknowledged targets and
	// repairs of gaps other nodes reported.
	Retransmits uint64
	// RepairRequests counts gap repair requests this node sent.
	RepairRequests uint64
	// Relayed counts events this node forwarded for others (a zone relay
	// fanning out, or a gateway).
	Relayed uint64
	// Batches counts data frames sent, each holding one or more events.
	Batches uint64

	// Traffic of events and acknowledgements sent and received within the
	// local zone and across zones. Repair traffic and membership gossip are
	// not counted here.
	SentLocal      Traffic
	SentRemote     Traffic
	ReceivedLocal  Traffic
	ReceivedRemote Traffic
	// SentRepair counts what this node sent to repair losses: repair
	// requests, retransmissions, "unavailable" answers and digests.
	SentRepair Traffic

	// DropsByReason counts input this node refused, by reason
	// ("malformed", "auth", "label", "replay", "version", "oversize",
	// "foreign", ...). Nil when nothing was dropped.
	DropsByReason map[string]uint64
	// PublishErrors counts failed publishes.
	PublishErrors uint64

	// FlowStalls counts the times this node's publishing stopped because a
	// receiver had no flow-control credit left, and FlowStallTime is their
	// total duration. FlowReleased counts receivers that stayed without
	// credit past the bus's stall bound (or became suspect) and stopped
	// holding the others back: they catch up through a resync.
	FlowStalls    uint64
	FlowStallTime time.Duration
	FlowReleased  uint64
}

// Traffic counts datagrams or broker messages and their bytes.
type Traffic struct {
	Messages uint64
	Bytes    uint64
}

// Histogram is a cumulative latency distribution. Counts[i] is the number of
// observations <= Bounds[i]; observations above the last bound are only in
// Count and Sum.
type Histogram struct {
	Bounds []time.Duration
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

// Quantile estimates the q-quantile (0 < q <= 1) as the upper bound of the
// bucket that holds it, or 0 when there are no observations. An estimate
// beyond the last bound returns the last bound.
func (h Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 || len(h.Bounds) == 0 {
		return 0
	}
	// Clamp q so that NaN, negative or oversized arguments give the lowest
	// or highest estimate instead of an arbitrary one.
	if !(q > 0) {
		q = 0
	} else if q > 1 {
		q = 1
	}
	rank := uint64(q*float64(h.Count) + 0.5)
	if rank < 1 {
		rank = 1
	}
	for i, c := range h.Counts {
		if c >= rank {
			return h.Bounds[i]
		}
	}
	return h.Bounds[len(h.Bounds)-1]
}
