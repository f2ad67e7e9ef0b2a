// Package mesh is Warp Mesh: a brokerless, peer-to-peer syncbus.Bus over
// UDP. Membership and failure detection come from package membership
// (memberlist underneath); fanout planning and acknowledgement counting from
// package zones; every datagram is a frame of package wire, authenticated
// and encrypted with the cluster's keys. Gossip and data share one port.
//
// It imports membership, zones, wire, syncbus and its protocol core
// (mesh/internal/protocol), never a broker client or the simulator: the
// simulator provides a membership.Transport instead (MeshOptions.Transport).
//
//	bus, err := mesh.NewMeshBus(mesh.MeshOptions{
//		NodeName: "api-1", Zone: "eu-west-1a", Region: "eu",
//		Peers:      []string{"10.0.0.10:7946"},
//		SecretKeys: [][]byte{key},
//	})
//	...
//	err = bus.PublishAndAwaitTopology(ctx, "user:42", 2) // applied in 2 zones
//
// # Shape
//
// The protocol is a pure state machine, mesh/internal/protocol: numbering,
// duplicate windows, repair, digests, awaited publishes, retransmission,
// relay aggregation, resync decisions and flow control, with no I/O and no
// clock. A MeshBus drives it: one goroutine, the event loop, owns it and
// feeds it the datagrams the transport receives, the membership's changes,
// the events callers publish (through a bounded queue) and the clock
// (MeshOptions.Clock); it carries the core's decisions out — deliveries to
// the subscriptions, frames sealed once and sent to all their receivers in
// one system call, outcomes to the awaiting callers. The protocol's
// behaviours are tested on the core alone, in scripts
// (mesh/internal/protocol/testdata).
//
// # Fanout
//
// Every event goes to every other alive node. In direct mode the publisher
// sends it to each of them. In relay mode it sends it to the other nodes of
// its own zone and to one relay in each remote zone, chosen to spread load
// (by event for an awaited publish, by batch otherwise); the relay delivers
// it, acknowledges at once if asked, and forwards it to the other nodes of
// its zone. Across zones, one data datagram per remote zone carries an
// event. FanoutAuto uses direct mode up to MeshOptions.RelayThreshold alive
// nodes and relays above.
//
// # Acknowledgements
//
// An awaited publish (PublishAndAwait, PublishAndAwaitTopology) marks its
// event as wanting acks. A receiver acks after handing the event to its
// subscriptions — an ack names the acking node's incarnation and promises
// that this incarnation applied the event — to the node it got the event
// from: the publisher, or the relay, which holds its zone peers' acks for
// about twice their measured round trip and forwards them together. The
// publisher counts an ack only from the incarnation it sent the event to,
// in a zones.Tracker per await; the call returns when satisfied. Before
// sending, a request the alive members cannot satisfy fails at once (fail
// fast); while waiting, a membership change that makes it impossible ends
// it at once; otherwise it waits until ctx ends or MeshOptions.AckTimeout.
// Unacked nodes get the event again after their measured retransmission
// timeout (RFC 6298; 20ms before any round trip was measured), doubling
// per attempt; a remote zone whose relay stayed silent gets another relay.
//
// # Reliability of plain publishes: NAKACK
//
// Each node numbers the events it publishes, per incarnation (the Boot of
// its membership metadata), from 1. A receiver keeps, per origin
// incarnation, the lowest number not yet received and the numbers received
// beyond it; events are delivered as soon as they arrive, in any order. A
// gap that stays open 5ms is reported to the origin in a repair request
// (NAK), repeated only once its answer is overdue (after the origin's
// retransmission timeout once the round trip to it is measured, 200ms
// before; never while the answer is still coming in), with backoff, up
// to 8 times; the origin resends from a ring of its last MeshOptions.RepairBuffer
// events and answers "unavailable" for what the ring no longer holds. A
// lost last event is revealed by digests: 15ms, 150ms and 1s after a node
// stops sending it announces its highest number to every node (in relay
// mode through each remote zone's relay, once every node there has a
// window of its incarnation; for 30s after a node joins its view, the
// last round goes to every node directly, since a relay whose view lacks
// the newcomer passes it neither events nor digests), and it announces it to every node that
// joins — owing it, by the start its membership metadata gives, what it
// published since that node started, even while gossip had not told it of
// the node yet. A node that hears from an address its membership does not
// list asks the membership to exchange state with it at once
// (membership.Membership.Contact) rather than wait for gossip. A node
// restarted under the same name is a new incarnation: it delivers (and
// only then acks) an event numbered before its window started, never takes
// it for a duplicate.
//
// # Loss is never silent
//
// When a gap can no longer be repaired — the origin's ring moved on, the
// origin left or failed, the repair requests went unanswered, or the gap
// fell more than 65536 numbers behind — every subscription of the node
// receives one syncbus.OpResync event naming the origin, so caches drop
// what they hold instead of serving stale data.
//
// # Flow control
//
// A publisher cannot outrun its receivers into loss. Each receiver grants
// each publisher credit — up to what it has received plus its share of the
// room its subscriptions have left (syncbus.Dispatcher.Room), at most
// MeshOptions.FlowWindow — and a publisher sends no event beyond its
// slowest alive receiver's credit. What it cannot send waits in its send
// queue; when that is full, Publish waits, at most
// MeshOptions.BackpressureTimeout, then fails with syncbus.ErrBackpressure.
// A receiver that stays without credit (its subscriber stopped reading, or
// it stopped answering) holds publishers back for MeshOptions.StallTimeout
// at most — not at all once the membership suspects it: they go on
// without it, its subscriptions overflow into one resync each, and it is
// waited for again once its credit shows it caught up. Repairs are asked
// for no faster than the subscriptions take them, so a node catching up
// after a partition or a pause gets its events, not a flush per burst.
// The publisher's own prefix subscriptions are receivers too: Publish
// waits while they are full, for StallTimeout at most, after which they
// are let go the same way until they have room again. Awaited publishes
// are never held.
//
// # Batching
//
// Publish queues the event and returns; the event loop moves everything
// queued into the core at once, which sends it packed into datagrams of
// wire.DefaultDatagramBudget bytes (at most MeshOptions.BatchSize events
// each, lz4-compressed when that helps). An idle bus sends at once; under
// heavy load the queue fills while the previous datagrams go out, so
// batches grow with the load; under moderate load (the last take moved
// several events, less than MeshOptions.BatchInterval ago) the loop waits
// until a datagram's worth of events is queued or the oldest has waited
// BatchInterval.
//
// # Time
//
// Every interval and timeout — memberlist's and the mesh's — derives from
// MeshOptions.TimeScale (0 means 1): 10 makes each ten times longer, which
// is what a simulation of many nodes on few cores needs.
//
// # Security
//
// With SecretKeys, every datagram is sealed with XChaCha20-Poly1305 under a
// key derived from the primary key, with a per-sender nonce that never
// repeats, and the cluster label bound into authentication. Frames that
// fail to open — another label, a bad tag, a replay, an unknown version,
// malformed bodies — are dropped before any subscriber or memberlist sees
// them and counted in Metrics.DropsByReason. An acknowledgement counts only
// for a node the publisher knows alive and for an event it is waiting on;
// nodes outside the cluster cannot forge one without the key. Without
// SecretKeys the bus runs unauthenticated (datagrams carry a checksum) and
// says so in its log.
//
// # Concurrency
//
// A MeshBus is safe for concurrent use. It runs one goroutine of its own,
// the event loop, besides membership's. Subscribers never block it:
// delivery follows syncbus.Dispatcher's policy (the newest event per exact
// key; a bounded prefix buffer that overflows into one resync per
// episode). Close sends what was published before it, stops the loop,
// leaves the cluster, and closes every subscription.
package mesh
