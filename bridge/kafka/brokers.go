package kafka

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/IBM/sarama"

	"github.com/warpmesh/warp/bridge"
)

// owned is what NewKafkaBusFromBrokers made and Close takes down.
type owned struct {
	// Three clients: Kafka answers the requests of one connection in
	// order, so a producer sharing a connection with a consumer's long
	// polls would wait for them.
	client      sarama.Client // producer and admin
	groupClient sarama.Client
	ackClient   sarama.Client
	admin       sarama.ClusterAdmin
	producer    sarama.SyncProducer
	group       sarama.ConsumerGroup
	groupID     string
	ackTopic    string
	consumer    sarama.Consumer
	acks        sarama.PartitionConsumer
	stopOnce    sync.Once
}

// NewKafkaBusFromBrokers connects to the Kafka cluster at brokers and
// returns a bus on topic, making everything a node needs: a client, a
// producer, a consumer group of its own (ID "warp.<topic>.<node>.<random>")
// and a topic of its own for its acknowledgements ("<topic>.acks.<random>",
// one partition), which receivers learn from the ReplyHeader of its
// messages, so acks reach this node only. It creates topic (one partition)
// when it does not exist. Close leaves and deletes the group, deletes the
// acknowledgement topic and closes the client; a process that dies without
// Close leaves both behind (delete groups and topics named warp.* and
// *.acks.* that have no member).
//
// WithSaramaConfig sets the client configuration to start from. Unlike
// NewKafkaBus it returns an error: for a bad option, or when the cluster
// cannot be reached or refuses to create what the bus needs (everything
// made so far is taken down again).
func NewKafkaBusFromBrokers(brokers []string, topic string, opts ...Option) (*KafkaBus, error) {
	o, cfg, err := apply(opts)
	if err != nil {
		return nil, err
	}
	if err := checkTopic("topic", topic); err != nil {
		return nil, err
	}
	if len(brokers) == 0 {
		return nil, &bridge.OptionError{Option: "brokers", Value: "[]", Err: errors.New("no broker address")}
	}
	var suffix [8]byte
	_, _ = rand.Read(suffix[:]) // crypto/rand.Read never fails on supported platforms.
	random := hex.EncodeToString(suffix[:])
	own := &owned{
		groupID:  fmt.Sprintf("warp.%s.%s.%s", topic, topicSafe(cfg.NodeName), random),
		ackTopic: ackTopicPrefix(topic) + random,
	}
	sc := sarama.NewConfig()
	if o.sarama != nil {
		copied := *o.sarama
		sc = &copied
	}
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	sc.Consumer.Return.Errors = true
	if sc.ClientID == "" || sc.ClientID == "sarama" {
		sc.ClientID = "warp-" + topicSafe(cfg.NodeName)
	}
	if err := sc.Validate(); err != nil {
		return nil, &bridge.OptionError{Option: "WithSaramaConfig", Value: "…", Err: err}
	}

	fail := func(err error) (*KafkaBus, error) {
		own.close(nil)
		return nil, err
	}
	if own.client, err = sarama.NewClient(brokers, sc); err != nil {
		return nil, fmt.Errorf("kafka: connecting to %v: %w", brokers, err)
	}
	if own.admin, err = sarama.NewClusterAdminFromClient(own.client); err != nil {
		return fail(fmt.Errorf("kafka: admin: %w", err))
	}
	if err := createTopic(own.admin, topic, false); err != nil {
		return fail(err)
	}
	if err := createTopic(own.admin, own.ackTopic, true); err != nil {
		return fail(err)
	}
	if own.producer, err = sarama.NewSyncProducerFromClient(own.client); err != nil {
		return fail(fmt.Errorf("kafka: producer: %w", err))
	}
	if own.groupClient, err = sarama.NewClient(brokers, sc); err != nil {
		return fail(fmt.Errorf("kafka: connecting to %v: %w", brokers, err))
	}
	if own.group, err = sarama.NewConsumerGroupFromClient(own.groupID, own.groupClient); err != nil {
		return fail(fmt.Errorf("kafka: consumer group: %w", err))
	}
	if own.ackClient, err = sarama.NewClient(brokers, sc); err != nil {
		return fail(fmt.Errorf("kafka: connecting to %v: %w", brokers, err))
	}
	if own.consumer, err = sarama.NewConsumerFromClient(own.ackClient); err != nil {
		return fail(fmt.Errorf("kafka: consumer: %w", err))
	}
	if own.acks, err = own.consumer.ConsumePartition(own.ackTopic, 0, sarama.OffsetOldest); err != nil {
		return fail(fmt.Errorf("kafka: reading %s: %w", own.ackTopic, err))
	}
	return start(own.producer, own.group, topic, own.ackTopic, own, cfg, o), nil
}

// createTopic creates topic with one partition; an existing topic is fine
// unless mustBeNew.
func createTopic(admin sarama.ClusterAdmin, topic string, mustBeNew bool) error {
	err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
	if err == nil || (!mustBeNew && errors.Is(err, sarama.ErrTopicAlreadyExists)) {
		return nil
	}
	return fmt.Errorf("kafka: creating topic %s: %w", topic, err)
}

// topicSafe keeps the characters of s that Kafka allows in a name.
func topicSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 64; i++ {
		ch := s[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-' {
			b.WriteByte(ch)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// readAcks hands the acknowledgements of the bus's own topic to the core.
func (b *KafkaBus) readAcks(pc sarama.PartitionConsumer) {
	defer b.wg.Done()
	for msg := range pc.Messages() {
		b.link.Receive(msg.Value, "")
	}
}

// stopAcks ends the acknowledgement reader (its Messages channel closes).
func (o *owned) stopAcks() {
	o.stopOnce.Do(func() {
		if o.acks != nil {
			o.acks.AsyncClose()
		}
	})
}

// close takes down what NewKafkaBusFromBrokers made, in order: the group
// leaves before it is deleted, the admin goes last (it closes the client).
func (o *owned) close(link *bridge.Link) error {
	var errs []error
	o.stopAcks()
	if o.consumer != nil {
		errs = append(errs, o.consumer.Close())
	}
	if o.group != nil {
		errs = append(errs, o.group.Close())
	}
	for _, c := range []sarama.Client{o.groupClient, o.ackClient} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	if o.producer != nil {
		errs = append(errs, o.producer.Close())
	}
	if o.admin != nil {
		if o.group != nil {
			if err := o.admin.DeleteConsumerGroup(o.groupID); err != nil {
				errs = append(errs, fmt.Errorf("kafka: deleting group %s: %w", o.groupID, err))
			}
		}
		if err := o.admin.DeleteTopic(o.ackTopic); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("kafka: deleting topic %s: %w", o.ackTopic, err))
		}
		errs = append(errs, o.admin.Close()) // closes the client
	} else if o.client != nil {
		errs = append(errs, o.client.Close())
	}
	err := errors.Join(errs...)
	if err != nil && link != nil {
		link.Logger().Warn("kafka: closing", "err", err)
	}
	return err
}

// ackTopicPrefix is how the acknowledgement topics of a bus on topic
// begin; 16 hex digits follow.
func ackTopicPrefix(topic string) string {
	return fmt.Sprintf("%.200s.acks.", topic)
}

// isAckTopic reports whether name is shaped as the acknowledgement topic
// of a bus on topic: receivers produce acks only there, so a record's
// ReplyHeader cannot send them to any other topic.
func isAckTopic(topic, name string) bool {
	random, ok := strings.CutPrefix(name, ackTopicPrefix(topic))
	if !ok || len(random) != 16 {
		return false
	}
	_, err := hex.DecodeString(random)
	return err == nil
}
