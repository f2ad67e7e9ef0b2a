// Package mesh is Warp Mesh: a brokerless, peer-to-peer syncbus.Bus over
// UDP. Membership and failure detection come from package membership
// (memberlist underneath); fanout planning and acknowledgement counting from
// package zones; every datagram is a frame of package wire, authenticated
// and encrypted with the cluster's keys. Gossip and data share one port.
//
// It imports membership, zones, wire and syncbus, never a broker client or
// the simulator: the simulator provides a membership.Transport instead
// (MeshOptions.Transport).
//
//	bus, err := mesh.NewMeshBus(mesh.MeshOptions{
//		NodeName: "api-1", Zone: "eu-west-1a", Region: "eu",
//		Peers:      []string{"10.0.0.10:7946"},
//		SecretKeys: [][]byte{key},
//	})
//	...
//	err = bus.PublishAndAwaitTopology(ctx, "user:42", 2) // applied in 2 zones
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
// nodes and relays above. One sealed datagram serves every receiver of a
// frame: it is encrypted once, whatever the fanout.
//
// # Acknowledgements
//
// An awaited publish (PublishAndAwait, PublishAndAwaitTopology) marks its
// event as wanting acks. A receiver acks after handing the event to its
// subscriptions, to the node it got the event from: the publisher, or the
// relay, which holds its zone peers' acks for up to 2ms (less once all have
// arrived) and forwards them in one datagram — so per remote zone the
// publisher usually receives two ack datagrams, the relay's own and the
// aggregate. The publisher's zones.Tracker counts nodes and zones; the call
// returns when satisfied. Before sending, a request the alive members
// cannot satisfy fails at once (fail fast); while waiting, a membership
// change that makes it impossible ends it at once; otherwise it waits until
// ctx ends or MeshOptions.AckTimeout. Unacked nodes get the event again after
// 20ms, then with doubling backoff; a remote zone whose relay stayed silent
// gets another relay. Every awaited publish is sent and acknowledged as its
// own event: it is never merged with another publish of its key.
//
// # Reliability of plain publishes: NAKACK
//
// Each node numbers the events it publishes, per incarnation (the Boot of
// its membership metadata), from 1. A receiver keeps, per origin
// incarnation, the lowest number not yet received and the numbers received
// beyond it. Events are delivered as soon as they arrive, in any order;
// numbers only serve duplicate suppression (a bounded window, not a set of
// every ID) and gap detection. A gap that stays open 5ms is reported to the
// origin in a repair request (NAK), repeated with backoff from 10ms up to
// 8 times; the origin resends from a ring of its last MeshOptions.RepairBuffer
// events, directly, and answers "unavailable" for what the ring no longer
// holds. A lost last event is revealed by digests: 15ms, 150ms and 1s after
// a node stops sending it announces its highest number to every node, and it
// announces it to every node that joins or comes back after a partition.
//
// Cost, with no loss: nothing beyond the events, except the digests — up
// to three rounds of one small datagram per other node after each burst of
// activity. With loss p per datagram, about p repair requests and p
// retransmissions per event and receiver.
//
// # Loss is never silent
//
// When a gap can no longer be repaired — the origin's ring moved on, the
// origin left or failed, the repair requests went unanswered, or the gap
// fell more than 65536 numbers behind — every subscription of the node
// receives one syncbus.OpResync event naming the origin, so caches drop
// what they hold instead of serving stale data.
//
// # Batching
//
// Publish queues the event and returns; one goroutine sends everything
// queued at once, packed into datagrams of wire.DefaultDatagramBudget bytes
// (at most MeshOptions.BatchSize events each, lz4-compressed when that
// helps). An idle bus sends at once; under heavy load the queue fills while
// the previous datagrams go out, so batches grow with the load; under
// moderate load (the last send packed several events, less than
// MeshOptions.BatchInterval ago) the goroutine waits until a datagram's
// worth of events is queued or the oldest has waited BatchInterval. A full
// queue (65536 events) makes Publish wait for room or for its ctx.
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
// A MeshBus is safe for concurrent use. It runs two goroutines: the
// batcher, and the event loop, which receives datagrams and runs the
// timers of repair, retransmission, digests and relay aggregation, and owns
// the receive windows. Subscribers never block either: delivery follows
// syncbus.Dispatcher's policy (the newest event per exact key; a bounded
// prefix buffer that overflows into a resync). Close stops both goroutines,
// leaves the cluster, and closes every subscription.
package mesh
