package sim

import (
	"sync/atomic"

	"github.com/warpmesh/warp/internal/faults"
)

// Kind says what a datagram carries. The network tells memberlist's
// gossip from the data plane's frames by the frame marker byte, and opens
// the data plane's frames with the cluster's keys (Config.Keys) to tell
// their kinds apart.
type Kind = faults.Kind

// The kinds of datagram and stream.
const (
	KindOther  = faults.KindOther
	KindGossip = faults.KindGossip
	KindStream = faults.KindStream
	KindEvents = faults.KindEvents
	KindAcks   = faults.KindAcks
	KindRepair = faults.KindRepair
	KindDigest = faults.KindDigest
	KindCredit = faults.KindCredit
	KindSealed = faults.KindSealed
)

// Traffic counts datagrams and their bytes.
type Traffic struct {
	Datagrams uint64 `json:"datagrams"`
	Bytes     uint64 `json:"bytes"`
	// Events counts the events the datagrams carry (events frames only).
	Events uint64 `json:"events,omitempty"`
}

// Flow splits traffic between datagrams that stay within a zone and those
// that cross to another one.
type Flow struct {
	Within Traffic `json:"within"`
	Across Traffic `json:"across"`
}

// Total is the flow's traffic, within and across zones.
func (f Flow) Total() Traffic {
	return Traffic{
		Datagrams: f.Within.Datagrams + f.Across.Datagrams,
		Bytes:     f.Within.Bytes + f.Across.Bytes,
		Events:    f.Within.Events + f.Across.Events,
	}
}

// Drops counts the datagrams the network did not deliver, by cause.
type Drops struct {
	// Loss: the link lost it (Link.Loss).
	Loss uint64 `json:"loss"`
	// Rule: a fault rule dropped it; Partition: a partition's rule did.
	Rule      uint64 `json:"rule"`
	Partition uint64 `json:"partition"`
	// Queue: the link's queue was full (Link.Bandwidth, Link.Queue).
	Queue uint64 `json:"queue"`
	// Receiver: the receiving node's queue was full.
	Receiver uint64 `json:"receiver"`
	// Down: no endpoint listened (no such host, or it crashed or closed).
	Down uint64 `json:"down"`
	// Paused: a paused host's queue was full.
	Paused uint64 `json:"paused"`
}

// Total is the number of dropped datagrams.
func (d Drops) Total() uint64 {
	return d.Loss + d.Rule + d.Partition + d.Queue + d.Receiver + d.Down + d.Paused
}

// Stats are what the network carried since it was created, counted on
// the wire: a datagram counts once per receiver when it is sent (lost or
// not), whatever the nodes believe they sent.
type Stats struct {
	// Events are first transmissions of events frames; Retransmits are
	// events frames sent again (repairs and retransmissions of awaited
	// events).
	Events      Flow `json:"events"`
	Retransmits Flow `json:"retransmits"`
	// Acks, Repairs (requests and "unavailable" answers), Digests and
	// Credits are the data plane's control frames.
	Acks    Flow `json:"acks"`
	Repairs Flow `json:"repairs"`
	Digests Flow `json:"digests"`
	Credits Flow `json:"credits"`
	// Unclassified are data-plane datagrams the network could not open
	// (no keys, or another cluster's frames).
	Unclassified Flow `json:"unclassified"`
	// Gossip is memberlist's datagrams.
	Gossip Flow `json:"gossip"`
	// Streams counts memberlist's streams opened (push/pull state
	// exchanges), StreamBytes the bytes written on them.
	Streams     uint64 `json:"streams"`
	StreamBytes uint64 `json:"streamBytes"`
	// Delivered counts datagrams handed to a node; Drops those that were
	// not, by cause.
	Delivered uint64 `json:"delivered"`
	Drops     Drops  `json:"drops"`
}

// Sub returns the traffic between an earlier snapshot o and s.
func (s Stats) Sub(o Stats) Stats {
	subT := func(a, b Traffic) Traffic {
		return Traffic{Datagrams: a.Datagrams - b.Datagrams, Bytes: a.Bytes - b.Bytes, Events: a.Events - b.Events}
	}
	subF := func(a, b Flow) Flow { return Flow{Within: subT(a.Within, b.Within), Across: subT(a.Across, b.Across)} }
	return Stats{
		Events:       subF(s.Events, o.Events),
		Retransmits:  subF(s.Retransmits, o.Retransmits),
		Acks:         subF(s.Acks, o.Acks),
		Repairs:      subF(s.Repairs, o.Repairs),
		Digests:      subF(s.Digests, o.Digests),
		Credits:      subF(s.Credits, o.Credits),
		Unclassified: subF(s.Unclassified, o.Unclassified),
		Gossip:       subF(s.Gossip, o.Gossip),
		Streams:      s.Streams - o.Streams,
		StreamBytes:  s.StreamBytes - o.StreamBytes,
		Delivered:    s.Delivered - o.Delivered,
		Drops: Drops{
			Loss: s.Drops.Loss - o.Drops.Loss, Rule: s.Drops.Rule - o.Drops.Rule,
			Partition: s.Drops.Partition - o.Drops.Partition, Queue: s.Drops.Queue - o.Drops.Queue,
			Receiver: s.Drops.Receiver - o.Drops.Receiver, Down: s.Drops.Down - o.Drops.Down,
			Paused: s.Drops.Paused - o.Drops.Paused,
		},
	}
}

// Stats returns the network's counters.
func (n *Network) Stats() Stats { return n.stats.snapshot() }

// The flows counters keeps, in the order of flowNames.
const (
	flowEvents = iota
	flowRetransmits
	flowAcks
	flowRepairs
	flowDigests
	flowCredits
	flowUnclassified
	flowGossip
	numFlows
)

type cause int

const (
	causeLoss cause = iota
	causeRule
	causePartition
	causeQueue
	causeReceiver
	causeDown
	causePaused
	numCauses
)

type trafficCounter struct{ datagrams, bytes, events atomic.Uint64 }

func (t *trafficCounter) load() Traffic {
	return Traffic{Datagrams: t.datagrams.Load(), Bytes: t.bytes.Load(), Events: t.events.Load()}
}

type counters struct {
	flows       [numFlows][2]trafficCounter // [flow][0 within, 1 across]
	drops       [numCauses]atomic.Uint64
	delivered   atomic.Uint64
	streams     atomic.Uint64
	streamBytes atomic.Uint64
}

func flowOf(info frameInfo) int {
	switch info.kind {
	case KindGossip:
		return flowGossip
	case KindEvents:
		if info.retransmit {
			return flowRetransmits
		}
		return flowEvents
	case KindAcks:
		return flowAcks
	case KindRepair:
		return flowRepairs
	case KindDigest:
		return flowDigests
	case KindCredit:
		return flowCredits
	}
	return flowUnclassified
}

func (c *counters) sent(info frameInfo, size int, across bool) {
	side := 0
	if across {
		side = 1
	}
	t := &c.flows[flowOf(info)][side]
	t.datagrams.Add(1)
	t.bytes.Add(uint64(size))
	if info.events > 0 {
		t.events.Add(uint64(info.events))
	}
}

func (c *counters) drop(why cause, k int) {
	if k > 0 {
		c.drops[why].Add(uint64(k))
	}
}

func (c *counters) snapshot() Stats {
	f := func(i int) Flow { return Flow{Within: c.flows[i][0].load(), Across: c.flows[i][1].load()} }
	return Stats{
		Events:       f(flowEvents),
		Retransmits:  f(flowRetransmits),
		Acks:         f(flowAcks),
		Repairs:      f(flowRepairs),
		Digests:      f(flowDigests),
		Credits:      f(flowCredits),
		Unclassified: f(flowUnclassified),
		Gossip:       f(flowGossip),
		Streams:      c.streams.Load(),
		StreamBytes:  c.streamBytes.Load(),
		Delivered:    c.delivered.Load(),
		Drops: Drops{
			Loss: c.drops[causeLoss].Load(), Rule: c.drops[causeRule].Load(),
			Partition: c.drops[causePartition].Load(), Queue: c.drops[causeQueue].Load(),
			Receiver: c.drops[causeReceiver].Load(), Down: c.drops[causeDown].Load(),
			Paused: c.drops[causePaused].Load(),
		},
	}
}
