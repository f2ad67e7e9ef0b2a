// Package redis is the syncbus.Bus over Redis pub/sub
// (github.com/redis/go-redis/v9): NewRedisBus(client, channel, opts...).
//
// # Place in the module
//
// It imports bridge (the broker-independent core and its options), wire,
// zones (acknowledgement counting, as the mesh) and syncbus; nothing below
// bridge/ imports a broker client. Tests start a redis-server child
// process on a free port.
//
// # What travels where
//
//   - Event frames — the mesh's wire frames, sealed with WithSecretKeys and
//     WithLabel when given, several events lz4-compressed in one message
//     under load — and presence announcements are published on channel;
//     every node subscribes to it. A frame is binary: `redis-cli SUBSCRIBE`
//     shows it as an escaped string, and `warp decode` prints its events.
//   - Each node also subscribes to its own acknowledgement channel,
//     AckChannel(channel, node); receivers publish their acks of awaited
//     events there, so acks never reach the other nodes.
//   - Foreign messages on channel, forged or other clusters' frames are
//     dropped and counted in Metrics.DropsByReason, never delivered.
//
// # Connection loss
//
// go-redis reconnects by itself: publishes retry on a new pooled
// connection, and the pub/sub connection is redialled and resubscribed on
// the next receive; the bus backs off between attempts and pings a silent
// connection (WithPingInterval). On an idle bus Publish sends the event
// itself (one round trip to Redis); under load it queues it for the bus's
// sender, which batches and pipelines. A send that fails while Redis is away is logged and
// counted in Metrics.PublishErrors, and receivers resync on the gap in the
// node's numbering. Awaiting calls fail at their deadline. Pub/sub has no
// replay, so once the bus's subscription is confirmed on a new connection
// every subscription receives exactly one resync (syncbus.OpResync).
//
// Redis disconnects a subscriber whose output buffer grows past
// client-output-buffer-limit pubsub (32 MiB hard, 8 MiB for 60 s by
// default): the bus reconnects and resyncs, so a slow node loses its cache
// rather than serving stale data. Size the limit for a few seconds of
// traffic (bytes per second from Metrics.SentLocal of a publisher, times
// the number of publishers). When the client is closed under the bus,
// Health reports it and every call returns an error matching
// bridge.ErrUnavailable.
//
// The bus never closes the client it was given; close the bus first.
package redis
