package kafka_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/warpmesh/warp/bridge/bridgetest"
	kafkabus "github.com/warpmesh/warp/bridge/kafka"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// metricsArbiter is sarama's go-metrics goroutine that never exits.
var metricsArbiter = goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick")

// startKafka runs an in-process Kafka cluster on free ports.
func startKafka(t testing.TB) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Producer.Return.Successes = true
	c.Consumer.Offsets.Initial = sarama.OffsetNewest
	c.Consumer.Group.Rebalance.Timeout = 5 * time.Second
	c.Metadata.RefreshFrequency = time.Minute
	return c
}

var topics atomic.Int64

// newTopic creates a topic with partitions partitions.
func newTopic(t testing.TB, kc *kfake.Cluster, partitions int32) string {
	t.Helper()
	topic := fmt.Sprintf("warp-test-%d", topics.Add(1))
	admin, err := sarama.NewClusterAdmin(kc.ListenAddrs(), saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	return topic
}

// ownedBus is a bus with the handles the test made for it: closing it
// closes the bus, then the group and the producer.
type ownedBus struct {
	*kafkabus.KafkaBus
	producer sarama.SyncProducer
	group    sarama.ConsumerGroup
	once     sync.Once
}

// Close closes the handles once: sarama's producer panics when closed
// twice.
func (o *ownedBus) Close() error {
	err := o.KafkaBus.Close()
	o.once.Do(func() {
		if o.group != nil {
			_ = o.group.Close()
			_ = o.producer.Close()
		}
	})
	return err
}

// handles makes a producer and a consumer group of its own for one node.
func handles(t testing.TB, kc *kfake.Cluster, node string) (sarama.SyncProducer, sarama.ConsumerGroup) {
	t.Helper()
	cfg := saramaConfig()
	producer, err := sarama.NewSyncProducer(kc.ListenAddrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	group, err := sarama.NewConsumerGroup(kc.ListenAddrs(), fmt.Sprintf("test-%s-%d", node, topics.Add(1)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return producer, group
}

// cluster builds one bus per node, with NewKafkaBus on handles of its own
// or with NewKafkaBusFromBrokers, and waits until each knows all the
// others.
func cluster(t testing.TB, kc *kfake.Cluster, fromBrokers bool, nodes []bustest.Node, opts ...kafkabus.Option) []*ownedBus {
	t.Helper()
	topic := newTopic(t, kc, 1)
	buses := make([]*ownedBus, len(nodes))
	for i, n := range nodes {
		o := append([]kafkabus.Option{kafkabus.WithNodeName(n.Name), kafkabus.WithZone(n.Zone), kafkabus.WithRegion(n.Region),
			kafkabus.WithPresenceInterval(200 * time.Millisecond), kafkabus.WithSaramaConfig(saramaConfig())}, opts...)
		var b *ownedBus
		if fromBrokers {
			kb, err := kafkabus.NewKafkaBusFromBrokers(kc.ListenAddrs(), topic, o...)
			if err != nil {
				t.Fatal(err)
			}
			b = &ownedBus{KafkaBus: kb}
		} else {
			p, g := handles(t, kc, n.Name)
			b = &ownedBus{KafkaBus: kafkabus.NewKafkaBus(p, g, topic, o...), producer: p, group: g}
		}
		t.Cleanup(func() { _ = b.Close() })
		buses[i] = b
	}
	bridgetest.WaitMembers(t, 20*time.Second, buses)
	return buses
}
