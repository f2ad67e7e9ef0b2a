// Package chaos checks what a chaos run recorded against the invariants a
// team betting production on the bus relies on. It is pure: it does no
// I/O, starts no goroutine and reads no clock. A harness — real `warp node`
// processes in network namespaces (this package's tests), or the mesh on
// sim — records what happened into a Record, and Check judges it:
//
//  1. No false acknowledgement: every awaited publish that returned
//     success was delivered to (or covered by a resync after it in) every
//     node and zone its ack report named, and those number at least what
//     was asked.
//  2. No silent loss: every event published while a node was alive and
//     reachable reached that node's subscription, or the subscription got
//     a resync covering the event's key after the publish began.
//  3. No duplicate delivery: no event ID twice on one subscription.
//  4. No crash, and goroutines and memory under the stated ceilings.
//
// # What the record holds
//
// The nodes and their zones; every subscription (a watch stream: when it
// opened, when it ended, each event with its receive time); every publish
// (publisher, key, kind, what it asked, when it started and returned, its
// outcome and ack report); the faults the harness applied, with their
// times; the processes' unexpected exits; and samples of each node's
// goroutines and memory. Every time is read from one clock, the harness's.
// Each publish must use its own key: deliveries are matched to publishes
// by key.
//
// # Alive and reachable, precisely
//
// Invariant 2 does not hold a node to what it could not have received. An
// event published by P over [Start, End] is owed to a subscription S of
// node N when all of these hold:
//
//   - it was sent: the publish succeeded, or it was an awaited publish
//     that waited and timed out (ReasonDeadline) — anything else (failed
//     fast, refused, publisher unreachable) may have sent nothing;
//   - S was open when the publish began (S.Opened ≤ Start) and stayed open
//     for the settle time after it returned (S.Closed zero, or S.Closed ≥
//     End + Settle): an event published before a subscription existed, or
//     one a killed node may not have written out, is not owed to it;
//   - no fault touched the pair (P, N) within [Start − Grace, End +
//     Settle], where a fault's own span [From, To] is stretched to
//     [From, To + Grace]. A kill, restart or pause touches every pair that
//     includes one of its nodes (a node is paired with itself too); a cut
//     touches every pair with exactly one node on its side of the cut.
//
// Grace covers what faults leave behind: failure detection, members
// rejoining after a heal or a restart, the mesh learning a new
// incarnation. Settle is how long an event may take to arrive. Both are
// the harness's to choose (Config); the table prints them.
//
// For invariant 1 a named node is checked on its subscriptions that were
// open over [Start, End + Settle] (verifiable): one of them must have
// received the event, or a resync covering it. A node without one —
// restarted mid-call, say, and acking with no subscription yet — is
// counted as unverifiable, not as a violation. A named zone is confirmed
// when one of its nodes (the publisher, for its own zone) delivered the
// event or was unverifiable while it acked.
//
// A resync covers an event on a subscription when the subscription
// received it at or after the publish began, its key is a prefix of the
// event's key (an all-keys watch's resync has the empty key) and its
// origin is empty or the event's publisher.
package chaos
