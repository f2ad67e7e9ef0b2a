// Package kafka is the syncbus.Bus over a Kafka topic
// (github.com/IBM/sarama): NewKafkaBus(producer, consumer, topic, opts...)
// on handles the caller configured, or NewKafkaBusFromBrokers(brokers,
// topic, opts...), which makes them.
//
// # Place in the module
//
// It imports bridge (the broker-independent core and its options), wire,
// zones (acknowledgement counting, as the mesh) and syncbus; nothing below
// bridge/ imports a broker client. Tests run an in-process Kafka cluster
// (github.com/twmb/franz-go/pkg/kfake).
//
// # One consumer group per node
//
// Every node must see every event, so each node reads the topic with a
// consumer group of its own. NewKafkaBusFromBrokers makes one with a
// unique ID and deletes it on Close. A user of NewKafkaBus gives each node
// its own group ID and, when the node goes away for good, deletes the
// group (sarama.ClusterAdmin.DeleteConsumerGroup after closing the group),
// or groups pile up on the brokers. The bus drives the group's Consume
// loop itself, across rebalances and broker errors, and marks every
// message, so a new session resumes where the last one stopped (with
// auto-commit on, sarama's default); a number skipped in a publisher's
// sequence (a session that resumed later than it stopped) resyncs the
// subscriptions, a number seen twice is dropped. A subscription is live
// before Subscribe (or the constructor) returns: they wait, bounded by
// WithReadyTimeout, until the group has its assignment and its starting
// offsets are resolved, so no event published afterwards is missed even
// with Consumer.Offsets.Initial = sarama.OffsetNewest.
//
// # What travels where, and what acks cost
//
// Event frames — the mesh's wire frames, sealed with WithSecretKeys and
// WithLabel when given, several events lz4-compressed in one record under
// load — and presence announcements are produced on the topic, keyed by
// node name so one node's frames stay in order in one partition. The
// handles of NewKafkaBus give no admin access and the group's session
// covers only the topic it was started with, so there acknowledgements
// ride the topic too: every node reads every ack (one small record per
// acknowledging node and burst of awaited events) and drops those of other
// publishers. A bus of NewKafkaBusFromBrokers has a topic of its own for
// its acks, named in the ReplyHeader of its records, so acks reach it
// alone; receivers of either kind honour the header.
//
// # Outages and leak checks
//
// sarama reconnects to brokers by itself; the bus retries the group's
// sessions with a backoff. On an idle bus Publish produces the event
// itself (one round trip to the broker); under load it queues it for the
// bus's sender, which batches with SendMessages. Sarama's calls take no
// context and, while a broker is away, wait out retries and the
// producer's circuit breaker (ten seconds once open), so the bus waits
// for a produce at most WithSendTimeout (default 5s): a send that fails
// or times out is logged, counted in Metrics.PublishErrors, and the
// receivers resync for its events — on the gap in the node's numbering,
// or, when they forgot the node during a long outage of its own, on its
// next digest, which names the lost numbers.
//
// Sarama reports no connection state, so the bus takes it from its
// produces (presence goes out every interval): after a failed one Health
// reports Connected false; after the next successful one the bus counts a
// reconnection and every subscription gets one resync, as on the pub/sub
// bridges. When the consumer group is closed under the bus, Health
// reports it and every call returns an error matching
// bridge.ErrUnavailable.
//
// sarama records metrics with github.com/rcrowley/go-metrics, whose meters
// start one global goroutine, (*meterArbiter).tick, that never exits. It
// is not the bus's: leak checks must ignore it, as this package's tests do
// with goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick").
package kafka
