// Package syncbus is the contract of the Warp sync bus and its in-process
// pieces: the Bus interface and its optional interfaces, Event, the publish
// options, the errors and Metrics; the Dispatcher every Bus uses for its
// local subscriptions; InMemoryBus and InMemoryNetwork; and the
// AsyncPublisher that keeps a slow bus from blocking its callers.
//
// # Place in the module
//
// syncbus is the leaf of the import graph: it imports nothing of this
// module. wire and zones may import it; mesh, the broker bridges, sim and
// cmd/warp build on it. Its conformance suite, syncbus/bustest, is run by
// every Bus implementation; production code never imports it.
//
// # Semantics, in brief
//
// Every Bus delivers an event published by any node to every matching
// subscription of every node, the publisher's own included. Subscribe gets
// the invalidations of exactly one key; SubscribePrefix (PrefixSubscriber)
// those of every key with a prefix, "" meaning every key; SubscribeLease the
// revocations of one lease, which never reach key or prefix subscriptions
// (a key "lease:x" and a lease "x" never collide).
//
// A slow subscriber never blocks a bus. An exact-key or lease subscription
// holds one event and keeps the newest while it is not read (the others are
// counted as coalesced; an event that arrives late never displaces a newer
// one of the same origin). A prefix subscription holds a bounded number of
// events; on overflow it receives one OpResync event, Key set to its prefix,
// instead of the events it could not hold (counted as dropped). Whenever a
// bus may have lost events it sends each affected subscription an OpResync,
// so a cache flushes what the subscription covers; never on a first
// subscribe or an orderly start. Relayed events are deduplicated by ID.
//
// Cancelling a subscription's ctx, or calling the matching Unsubscribe,
// ends it and closes its channel exactly once; a second Unsubscribe returns
// nil. Close closes every channel, is idempotent, and afterwards every
// method returns ErrClosed.
//
// PublishAndAwait returns once a number of other nodes acknowledged (each
// after delivering to its own subscriptions); PublishAndAwaitTopology once
// the event was applied in a number of zones, the publisher's own counting,
// with WithZoneQuorum requiring several nodes per zone. When the alive
// members cannot satisfy a call it fails fast, without publishing.
// Otherwise it waits for its ctx (or a default ack timeout). Failures are
// *QuorumError values matching ErrQuorumNotSatisfied and their cause.
//
// # Concurrency and ownership
//
// Bus implementations, Dispatcher, InMemoryNetwork, AsyncPublisher,
// IDGenerator, LatencyRecorder and DedupeWindow are safe for concurrent
// use. An Event received from a channel belongs to the receiver, except its
// VectorClock map, which is shared by every subscription (and, in process,
// every node) that received the same event: treat it as read-only.
// WithVectorClock copies the caller's map, so the caller may keep changing
// its own.
package syncbus
