// Package zones holds the pure decisions of zone-aware fanout and
// acknowledgement counting: which nodes a publisher sends an event to, and
// when the acknowledgements it got satisfy PublishAndAwait (N replicas) or
// PublishAndAwaitTopology (K zones, optionally with a per-zone quorum).
//
// # Place in the module
//
// zones imports only syncbus (for Member, MemberState, QuorumKind,
// QuorumError, AckReport and EventID). The mesh and the broker bridges
// import it; it imports nothing that does I/O. It starts no goroutines,
// reads no clock and uses no randomness: every answer is a function of its
// arguments, which is what makes it testable against naive models.
//
// # Usage contract
//
// A Topology is a snapshot of the membership as the local node sees it,
// built by New from a []syncbus.Member whenever the membership changes.
// Suspect nodes count as alive; left and failed nodes stay known but take
// no part. A Topology is immutable and safe to share between goroutines
// (publish it through an atomic pointer, say).
//
// For each event, the publisher:
//
//  1. calls Feasible or CheckFeasible with the requirement and fails fast,
//     without sending, when the alive nodes cannot satisfy it;
//  2. calls Plan (ModeDirect for small clusters, ModeRelay otherwise — the
//     threshold is the caller's, compare it with Size) and sends one
//     datagram per Target, marking relays as such;
//  3. creates a Tracker with NewTracker, feeds it every acknowledgement with
//     Ack, and every membership change with SetTopology, until Result is
//     Satisfied or Impossible or its deadline passes;
//  4. retransmits to Unacked, planning replacements for silent relays with
//     PickRelay (or Plan) and an avoid function that marks them.
//
// A relay, on receiving an event marked for relaying, fans it out to
// ZonePeers(its zone, itself, the origin) on its own topology.
//
// A bus that knows its members as a list, and sends through a broker
// rather than planning targets (the bridges), does steps 1 and 3 with a
// Counter: NewCounter builds the topology and checks feasibility, Update
// takes each new member list.
//
// A Tracker belongs to one goroutine (the owner of the event, typically the
// mesh's event loop) and is not safe for concurrent use; this keeps its hot
// path free of locks.
//
// # Cost
//
// The publish path is the hot path, so it is kept to a handful of
// allocations:
//
//	New            O(N log N)            a constant number of allocations
//	Feasible       O(1)                  none
//	Plan           O(L + Z) relay mode,  one (the result); AppendPlan: none
//	               O(N) direct mode
//	PickRelay      O(1) expected         none
//	ZonePeers      O(S·E)                one; AppendZonePeers: none
//	NewTracker     O(N/64 + Z)           one up to 128 nodes in 4 zones
//	Tracker.Ack    O(1), one map lookup  none
//	Tracker.Result O(1)                  none
//	SetTopology    O(N)                  one or two
//
// N is the number of known members, L the number of alive nodes in the
// publisher's zone, Z the number of zones, S the size of one zone, E the
// number of exceptions given to ZonePeers.
package zones
