// Package nats is the syncbus.Bus over NATS core pub/sub
// (github.com/nats-io/nats.go): NewNATSBus(nc, subject, opts...).
//
// # Place in the module
//
// It imports bridge (the broker-independent core and its options), wire,
// zones (acknowledgement counting, as the mesh) and syncbus; nothing below
// bridge/ imports a broker client. Tests start an embedded nats-server.
//
// # What travels where
//
//   - Event frames — the mesh's wire frames, sealed with WithSecretKeys and
//     WithLabel when given, several events lz4-compressed in one message
//     under load — and presence announcements go to subject; every node
//     subscribes to it. Keys of any bytes travel inside the frames, so they
//     never meet NATS's subject syntax.
//   - Each message carries the bus's reply inbox (a subject only this node
//     subscribes to); receivers acknowledge awaited events there, so acks
//     never reach the other nodes.
//   - Foreign messages on subject, forged or other clusters' frames are
//     dropped and counted in Metrics.DropsByReason, never delivered.
//   - The bus reads both subscriptions asynchronously: nats.go hands each
//     message to the bus on the subscription's own goroutine.
//
// # The connection
//
// Buses may share a connection with each other and with the rest of the
// application. The server echoes every message to its sender's connection
// when that connection subscribes to the subject, so a node hears its own
// frames back; the bus drops them unopened, but the server and the client
// still carry them. A connection made with nats.NoEcho spares that, which
// makes the bus's deliveries measurably faster (BENCHMARKS.md, "Bridges"):
// use it for a connection that carries one bus per subject. Two buses of
// one subject on one such connection would never hear each other, so
// NewNATSBus refuses the second with an error naming nc.
//
// # Connection loss
//
// nats.go reconnects and resubscribes by itself; the bus follows the
// connection's status events (it does not replace the user's handlers).
// While the connection is down, Publish still returns nil: nats.go keeps
// what is published in its reconnect buffer (nats.ReconnectBufSize, 8 MiB
// by default) and sends it once back; beyond that buffer the send fails,
// is logged and counted in Metrics.PublishErrors, and receivers resync on
// the gap in the node's numbering. Awaiting calls fail at their deadline.
// NATS core has no replay, so when the connection is back every
// subscription receives exactly one resync (syncbus.OpResync). When
// nats.go drops messages because the bus fell behind (a slow consumer:
// see WithPendingLimits for the client-side buffer, and the server's
// max_pending for its own), every subscription resyncs too. When the
// connection is closed for good, Health reports it and every call returns
// an error matching bridge.ErrUnavailable.
//
// The bus never closes the connection it was given; close the bus first.
package nats
