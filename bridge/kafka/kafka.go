package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/syncbus"
)

// DefaultReadyTimeout bounds the wait for the consumer group's first
// assignment (see WithReadyTimeout).
const DefaultReadyTimeout = 10 * time.Second

// ReplyHeader is the record header naming the topic where a publisher
// reads its acknowledgements, when it has one of its own (a bus of
// NewKafkaBusFromBrokers). Without it, receivers acknowledge on the bus's
// topic; they honour it only when it names a topic shaped as such a bus's
// acknowledgement topic ("<topic>.acks." and 16 hex digits), so a record
// cannot have acks produced to any other topic.
const ReplyHeader = "warp-reply"

// KafkaBus is a syncbus.Bus over a Kafka topic. Its methods are those of
// the embedded *bridge.Core (Publish, the awaiting calls, the
// subscriptions, Relay, Members, Metrics, Health, WaitForMembers), with
// the subscribing methods first waiting, bounded, until the bus's consumer
// group reads the topic. See the package documentation for what travels
// where. It is safe for concurrent use.
type KafkaBus struct {
	*bridge.Core
	link     *bridge.Link
	producer sarama.SyncProducer
	group    sarama.ConsumerGroup
	topic    string
	ackTopic string               // "" unless the bus has an acknowledgement topic of its own
	key      sarama.StringEncoder // the node's name, the key of its records

	ready        chan struct{} // closed once the group first has its assignment and position
	readyOnce    sync.Once
	readyTimeout time.Duration
	closeTimeout time.Duration // what Close waits for produces under way

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	own       *owned // what NewKafkaBusFromBrokers made
	closing   atomic.Bool

	// sends tracks the produce goroutines, which may outlive the send
	// that started them (see produce); unreachable is true from a failed
	// produce until one succeeds.
	sends       sync.WaitGroup
	unreachable atomic.Bool
}

var (
	_ syncbus.Bus              = (*KafkaBus)(nil)
	_ syncbus.PrefixSubscriber = (*KafkaBus)(nil)
	_ syncbus.MemberLister     = (*KafkaBus)(nil)
	_ syncbus.Relayer          = (*KafkaBus)(nil)
	_ syncbus.AllSubscriber    = (*KafkaBus)(nil)
	_ syncbus.MetricsReporter  = (*KafkaBus)(nil)
)

// NewKafkaBus returns a bus whose events, acknowledgements and presence
// travel on topic: it produces with producer and reads topic with
// consumer, driving the group's Consume loop itself across rebalances and
// errors. Every node must see every event, so consumer must be this node's
// own group (a group ID no other node uses; NewKafkaBusFromBrokers makes
// one). The constructor waits, bounded (WithReadyTimeout), until the group
// has its assignment and position, so no event published after it returns
// is missed even when the group starts at the newest offset.
//
// The producer's partitioner should honour message keys (sarama's default
// hash partitioner does): the bus keys its messages by node name, so one
// node's frames stay in order in one partition.
//
// NewKafkaBus returns no error: when an option or an argument is bad,
// every call of the returned bus returns an error naming it (matching
// bridge.ErrBadOption), and Close returns nil. The bus closes neither
// handle: close the bus, then the consumer group (which leaves the group),
// then the producer, and delete the group if its ID will not be used again
// (sarama.ClusterAdmin.DeleteConsumerGroup), or groups pile up on the
// brokers.
func NewKafkaBus(producer sarama.SyncProducer, consumer sarama.ConsumerGroup, topic string, opts ...Option) *KafkaBus {
	o, cfg, err := apply(opts)
	if err == nil {
		err = checkArgs(producer, consumer, topic)
	}
	if err != nil {
		return &KafkaBus{Core: bridge.Broken(err)}
	}
	return start(producer, consumer, topic, "", nil, cfg, o)
}

// checkArgs refuses missing handles and a topic Kafka would refuse.
func checkArgs(producer sarama.SyncProducer, consumer sarama.ConsumerGroup, topic string) error {
	switch {
	case producer == nil:
		return &bridge.OptionError{Option: "producer", Value: nil, Err: errors.New("nil sarama.SyncProducer")}
	case consumer == nil:
		return &bridge.OptionError{Option: "consumer", Value: nil, Err: errors.New("nil sarama.ConsumerGroup")}
	}
	return checkTopic("topic", topic)
}

// checkTopic applies Kafka's rule for topic names.
func checkTopic(what, topic string) error {
	bad := topic == "" || len(topic) > 249 || topic == "." || topic == ".."
	for i := 0; i < len(topic) && !bad; i++ {
		ch := topic[i]
		bad = !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-')
	}
	if bad {
		return &bridge.OptionError{Option: what, Value: fmt.Sprintf("%q", topic), Err: errors.New("not a Kafka topic name (1-249 of [a-zA-Z0-9._-])")}
	}
	return nil
}

// start builds the bus on its handles and starts reading.
func start(producer sarama.SyncProducer, group sarama.ConsumerGroup, topic, ackTopic string, own *owned, cfg bridge.Config, o options) *KafkaBus {
	b := &KafkaBus{
		producer: producer, group: group, topic: topic, ackTopic: ackTopic, own: own,
		key:          sarama.StringEncoder(cfg.NodeName), // set before the core's goroutines read it
		ready:        make(chan struct{}),
		readyTimeout: o.readyTimeout,
	}
	if b.readyTimeout == 0 {
		b.readyTimeout = DefaultReadyTimeout
	}
	b.readyTimeout = time.Duration(float64(b.readyTimeout) * cfg.TimeScale)
	b.closeTimeout = min(cfg.SendTimeout, time.Duration(float64(2*time.Second)*cfg.TimeScale))
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.Core, b.link = bridge.NewCore(cfg, &transport{b})
	b.wg.Add(2)
	go b.consume()
	go b.drainErrors()
	if own != nil && own.acks != nil {
		b.wg.Add(1)
		go b.readAcks(own.acks)
	}
	b.waitReady(b.ctx)
	return b
}

// waitReady waits until the group has its first assignment and position,
// ctx ends, or the ready timeout passes (then it logs and returns: the
// subscriptions are live once the group is).
func (b *KafkaBus) waitReady(ctx context.Context) {
	select {
	case <-b.ready:
		return
	default:
	}
	t := time.NewTimer(b.readyTimeout)
	defer t.Stop()
	select {
	case <-b.ready:
	case <-ctx.Done():
	case <-b.Core.Done():
	case <-t.C:
		b.link.Logger().Warn("kafka: the consumer group has no assignment yet; events published now may be missed until it has", "topic", b.topic, "waited", b.readyTimeout)
	}
}

// consume drives the group's Consume loop until Close: a session ends at
// every rebalance and on broker errors, and a new one begins.
func (b *KafkaBus) consume() {
	defer b.wg.Done()
	h := &handler{b: b}
	backoff := 50 * time.Millisecond
	for {
		err := b.group.Consume(b.ctx, []string{b.topic}, h)
		if b.ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, sarama.ErrClosedConsumerGroup):
			if !b.closing.Load() {
				b.link.Failed(err)
			}
			return
		case err != nil:
			b.link.Logger().Warn("kafka: consumer group session failed; retrying", "topic", b.topic, "err", err)
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		default:
			backoff = 50 * time.Millisecond
		}
	}
}

// drainErrors logs the group's errors, when it returns them (with
// Consumer.Return.Errors), so its channel never fills.
func (b *KafkaBus) drainErrors() {
	defer b.wg.Done()
	errs := b.group.Errors()
	for {
		select {
		case <-b.ctx.Done():
			return
		case err, ok := <-errs:
			if !ok {
				return
			}
			b.link.Logger().Warn("kafka: consumer group error", "topic", b.topic, "err", err)
		}
	}
}

// handler is the bus's sarama.ConsumerGroupHandler.
type handler struct {
	b *KafkaBus
	// claims counts the claims of the current session not yet consuming;
	// the bus is ready once a session's claims all are.
	claims atomic.Int64
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	n := len(s.Claims()[h.b.topic])
	h.claims.Store(int64(n))
	if n == 0 {
		// A group with no partition of the topic (more members than
		// partitions, or a topic that does not exist yet) reads nothing;
		// waiting longer would not help.
		h.b.link.Logger().Warn("kafka: the consumer group got no partition of the topic", "topic", h.b.topic)
	}
	return nil
}

func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim hands every message to the core. By the time it runs, the
// claim's starting offset is resolved: the bus is ready once every claim
// of the session consumes.
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	if h.claims.Add(-1) == 0 {
		h.b.readyOnce.Do(func() { close(h.b.ready) })
	}
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.b.link.Receive(msg.Value, replyOf(msg))
			s.MarkMessage(msg, "")
		case <-s.Context().Done():
			return nil
		}
	}
}

// replyOf returns the value of the message's ReplyHeader, or "".
func replyOf(msg *sarama.ConsumerMessage) string {
	for _, h := range msg.Headers {
		if h != nil && string(h.Key) == ReplyHeader {
			return string(h.Value)
		}
	}
	return ""
}

// waitSubscribed makes the subscribing methods return only once the group
// reads the topic.
func (b *KafkaBus) waitSubscribed(ctx context.Context) {
	if b.producer != nil {
		b.waitReady(ctx)
	}
}

// Subscribe returns a channel receiving the invalidations of key, once the
// bus's consumer group reads the topic (bounded by ctx and the ready
// timeout).
func (b *KafkaBus) Subscribe(ctx context.Context, key string) (<-chan syncbus.Event, error) {
	b.waitSubscribed(ctx)
	return b.Core.Subscribe(ctx, key)
}

// SubscribePrefix returns a channel receiving the invalidations of every
// key that starts with prefix, once the group reads the topic.
func (b *KafkaBus) SubscribePrefix(ctx context.Context, prefix string) (<-chan syncbus.Event, error) {
	b.waitSubscribed(ctx)
	return b.Core.SubscribePrefix(ctx, prefix)
}

// SubscribeLease returns a channel receiving the revocations of lease id,
// once the group reads the topic.
func (b *KafkaBus) SubscribeLease(ctx context.Context, id string) (<-chan syncbus.Event, error) {
	b.waitSubscribed(ctx)
	return b.Core.SubscribeLease(ctx, id)
}

// SubscribeAll returns a channel receiving every event the node delivers,
// once the group reads the topic.
func (b *KafkaBus) SubscribeAll(ctx context.Context) (<-chan syncbus.Event, error) {
	b.waitSubscribed(ctx)
	return b.Core.SubscribeAll(ctx)
}

// Ready returns a channel closed once the bus's consumer group first had
// its assignment and position.
func (b *KafkaBus) Ready() <-chan struct{} {
	if b.ready == nil {
		return nil
	}
	return b.ready
}

// Close announces the node's departure, stops the bus's goroutines and
// closes every subscription channel. A bus of NewKafkaBus closes neither
// of its handles (the group stays a member until the caller closes it); a
// bus of NewKafkaBusFromBrokers then leaves and deletes its group, deletes
// its acknowledgement topic and closes its client. A second call returns
// nil.
func (b *KafkaBus) Close() error {
	if b.producer == nil {
		return nil // built with a bad option: nothing runs
	}
	var err error
	b.closeOnce.Do(func() {
		b.closing.Store(true)
		_ = b.Core.Close()
		b.cancel()
		if b.own != nil {
			b.own.stopAcks()
		}
		b.wg.Wait()
		if b.own != nil {
			err = b.own.close(b.link) // closing the producer ends its sends
			b.sends.Wait()
			return
		}
		b.waitSends()
	})
	return err
}

// waitSends waits, bounded, for produces still under way on the caller's
// producer: sarama answers them only once its retries are spent or the
// producer is closed.
func (b *KafkaBus) waitSends() {
	done := make(chan struct{})
	go func() {
		b.sends.Wait()
		close(done)
	}()
	t := time.NewTimer(b.closeTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		b.link.Logger().Warn("kafka: produces still unanswered at Close; they end when the producer is closed", "topic", b.topic)
	}
}

// produce runs send, a call of the SyncProducer, bounded by ctx. Sarama's
// calls take no context, and while the broker is away they wait out
// retries, metadata refreshes and the producer's circuit breaker (ten
// seconds once open): far beyond the bus's SendTimeout, and presence and
// acknowledgements would wait behind them. A call that outlives ctx goes
// on in its goroutine (the message holds a copy of the frame), which the
// bus tracks and Close waits for.
//
// Sarama reports no connection state, so its answers stand for it: a
// failed call makes the bus disconnected (Health says so, and the gaps
// receivers see meanwhile wait for the resync to come), the next
// successful one reconnected (every subscription gets one resync, as on
// the pub/sub bridges).
func (b *KafkaBus) produce(ctx context.Context, send func() error) error {
	done := make(chan error, 1)
	b.sends.Add(1)
	go func() {
		defer b.sends.Done()
		done <- send()
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = fmt.Errorf("kafka: no answer from the broker: %w", ctx.Err())
	}
	b.report(err)
	return mapErr(err)
}

// report tells the core of a failed produce after a successful one, or
// the reverse.
func (b *KafkaBus) report(err error) {
	switch {
	case err == nil:
		if b.unreachable.CompareAndSwap(true, false) {
			b.link.Reconnected()
		}
	case b.closing.Load() || errors.Is(err, sarama.ErrClosedClient):
		// Our own Close, or the caller closed the producer: not an outage.
	case b.unreachable.CompareAndSwap(false, true):
		b.link.Disconnected(err)
	}
}

// transport produces frames on the topic, keyed by node name, with the
// node's acknowledgement topic in a header when it has one; acks go there,
// or to the topic.
type transport struct{ b *KafkaBus }

func (t *transport) Publish(ctx context.Context, frames [][]byte) error {
	b := t.b
	msgs := make([]*sarama.ProducerMessage, len(frames))
	key := b.key
	for i, f := range frames {
		// The transport must not keep frames: the message gets a copy,
		// which a produce that outlives its ctx may still read.
		m := &sarama.ProducerMessage{Topic: b.topic, Key: key, Value: sarama.ByteEncoder(append([]byte(nil), f...))}
		if b.ackTopic != "" {
			m.Headers = []sarama.RecordHeader{{Key: []byte(ReplyHeader), Value: []byte(b.ackTopic)}}
		}
		msgs[i] = m
	}
	return b.produce(ctx, func() error { return b.producer.SendMessages(msgs) })
}

// InlineAcks reports that the bus acknowledges from the goroutine that
// consumes the claim, and that a publish on an idle bus is produced from
// the caller's goroutine: one produce round trip each, which would
// otherwise wait behind a goroutine hop (see bridge.InlineAcker).
func (t *transport) InlineAcks() bool { return true }

func (t *transport) Ack(ctx context.Context, origin, reply string, frame []byte) error {
	topic := t.b.topic
	if reply != "" && isAckTopic(t.b.topic, reply) {
		topic = reply
	}
	msg := &sarama.ProducerMessage{
		Topic: topic, Key: sarama.StringEncoder(origin), Value: sarama.ByteEncoder(append([]byte(nil), frame...)),
	}
	return t.b.produce(ctx, func() error { _, _, err := t.b.producer.SendMessage(msg); return err })
}

// mapErr maps the client's errors to syncbus's sentinels at the package
// boundary, keeping the original wrapped.
func mapErr(err error) error {
	if errors.Is(err, sarama.ErrClosedClient) || errors.Is(err, sarama.ErrClosedConsumerGroup) {
		return fmt.Errorf("%w: %w", bridge.ErrUnavailable, err)
	}
	return err
}
