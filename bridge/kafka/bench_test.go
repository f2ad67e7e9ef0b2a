package kafka_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/warpmesh/warp/bridge/bridgetest"
	kafkabus "github.com/warpmesh/warp/bridge/kafka"
)

// The bridge's costs against the raw client's on the same in-process
// cluster, in the same run (BENCHMARKS.md, "Bridges"):
//
//	go test -run '^$' -bench . -benchtime 500x ./bridge/kafka/
//
// as for bridge/nats: Burst (messages and bytes per 10 000 invalidations),
// Eventual to 4 nodes, PublishAndAwait(4); raw: a produce read by 4
// partition consumers, and a request answered by 4 replies on a reply
// topic.

func BenchmarkBurst10k(b *testing.B) {
	kc := startKafka(b)
	bridgetest.Burst10k(b, func(b *testing.B, unbatched bool) []*ownedBus {
		opts := []kafkabus.Option{kafkabus.WithPrefixBuffer(1 << 15)}
		if unbatched {
			opts = append(opts, kafkabus.WithBatchSize(1))
		}
		return cluster(b, kc, false, bridgetest.BenchNodes(2), opts...)
	})
}

func BenchmarkLatency(b *testing.B) {
	kc := startKafka(b)
	b.Run("bridge/eventual-4", func(b *testing.B) {
		bridgetest.EventualLatency(b, cluster(b, kc, false, bridgetest.BenchNodes(5)))
	})
	for _, fromBrokers := range []bool{false, true} {
		name := "bridge/await-4"
		if fromBrokers {
			name = "bridge/await-4-ack-topic"
		}
		b.Run(name, func(b *testing.B) {
			bridgetest.AwaitLatency(b, cluster(b, kc, fromBrokers, bridgetest.BenchNodes(5)))
		})
	}
	b.Run("raw/publish-4", func(b *testing.B) {
		topic := newTopic(b, kc, 1)
		producer := rawProducer(b, kc)
		got := make(chan struct{}, 16)
		for range 4 {
			go drainTo(rawConsumer(b, kc, topic), got, nil)
		}
		payload := sarama.ByteEncoder(make([]byte, 100))
		w := bridgetest.NewWatchdog(b, 30*time.Second)
		b.ResetTimer()
		for range b.N {
			if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: payload}); err != nil {
				b.Fatal(err)
			}
			waitN(b, w, got, 4)
		}
	})
	b.Run("raw/request-4-replies", func(b *testing.B) {
		req, reply := newTopic(b, kc, 1), newTopic(b, kc, 1)
		producer := rawProducer(b, kc)
		for range 4 {
			responder := rawProducer(b, kc)
			go drainTo(rawConsumer(b, kc, req), nil, func(m *sarama.ConsumerMessage) {
				_, _, _ = responder.SendMessage(&sarama.ProducerMessage{Topic: reply, Value: sarama.ByteEncoder(m.Value[:8])})
			})
		}
		replies := make(chan struct{}, 16)
		go drainTo(rawConsumer(b, kc, reply), replies, nil)
		payload := sarama.ByteEncoder(make([]byte, 100))
		w := bridgetest.NewWatchdog(b, 30*time.Second)
		b.ResetTimer()
		for range b.N {
			if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: req, Value: payload}); err != nil {
				b.Fatal(err)
			}
			waitN(b, w, replies, 4)
		}
	})
}

func waitN(b *testing.B, w *bridgetest.Watchdog, ch <-chan struct{}, n int) {
	for range n {
		bridgetest.Next(b, w, ch)
	}
	w.Progress()
}

func rawProducer(b *testing.B, kc interface{ ListenAddrs() []string }) sarama.SyncProducer {
	p, err := sarama.NewSyncProducer(kc.ListenAddrs(), saramaConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

// rawConsumer reads topic's only partition from its newest offset, on a
// client of its own.
func rawConsumer(b *testing.B, kc interface{ ListenAddrs() []string }, topic string) sarama.PartitionConsumer {
	c, err := sarama.NewConsumer(kc.ListenAddrs(), saramaConfig())
	if err != nil {
		b.Fatal(err)
	}
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetNewest)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pc.Close(); _ = c.Close() })
	return pc
}

func drainTo(pc sarama.PartitionConsumer, ch chan<- struct{}, fn func(*sarama.ConsumerMessage)) {
	for m := range pc.Messages() {
		if fn != nil {
			fn(m)
		}
		if ch != nil {
			ch <- struct{}{}
		}
	}
}
