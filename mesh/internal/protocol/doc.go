// Package protocol is the Warp Mesh protocol of one node as a pure state
// machine, in the manner of etcd's raft: it owns every protocol decision —
// numbering per incarnation, duplicate windows and gap detection, repair
// requests and their schedule, the repair ring, digests, awaited publishes
// and their trackers, retransmission, relay forwarding and relay ack
// aggregation, resync decisions, round-trip estimates and flow-control
// credits — and does no I/O, starts no goroutine and reads no clock.
//
// # Place in the module
//
// protocol imports zones, wire and syncbus only (no sockets, no membership,
// no os, no time.Now or timers; arch_test.go enforces it). Package mesh is
// its only user: the MeshBus driver feeds it and carries out what it
// decides.
//
// # The caller's duties
//
// One goroutine owns a Core. It hands the Core what happened, with the
// current time:
//
//   - SetMembers when the membership changes (the alive nodes, their zones,
//     addresses and incarnations);
//   - Step for each frame body received (after opening its envelope), with
//     the sender's address;
//   - Publish for events published here, Await for an awaited publish (with
//     its requirement and deadline), Cancel when its caller stops waiting;
//   - Tick when NextTick is due;
//   - SetRoom before a call, with how many more events the subscriptions
//     can take now (this is what flow control grants from);
//   - Close when the node stops.
//
// After each call it acts on Ready, in order — it hands Deliveries to the
// local subscriptions, resyncs every subscription for each origin in
// Resyncs, sends Messages (encoding each, sealing it once and sending the
// same datagram to every address of its To), reports Outcomes and asks the
// membership to exchange state with each of Strangers (senders the view
// does not list: news of nodes gossip missed) — and then calls Advance. Delivering before sending is what makes an
// acknowledgement mean "applied". Messages must be sent in order: a digest
// must not overtake the events it announces. Nothing in Ready may be kept
// after Advance.
//
// Errors of Step are frames that do not decode (wire.ErrMalformed and the
// like): the caller counts and drops them; the Core is unchanged. Frames
// that decode but make no sense here are counted in Stats.Drops.
//
// # Time
//
// Every interval derives from Timings, stretched by Config.TimeScale.
// Retransmission of awaited events and the backoff of repair requests
// follow the round trip measured to each peer (RFC 6298's estimator, see
// rtt.go), within bounds; a relay holds its peers' acks for twice their
// measured round trip. The Core never reads a clock: tests drive it with a
// fake one, in scripts (testdata/*.txt, run by TestInteraction).
//
// # Flow control
//
// See flow.go: receivers grant each origin credit from the room their
// subscriptions have left; a publisher sends no further than its slowest
// alive receiver's credit, holds the rest (Pending), and after
// Timings.StallTimeout — at once for a suspect node — goes on without a
// receiver that stays without credit. Awaited events are not held.
package protocol
