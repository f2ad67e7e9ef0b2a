package kafka_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/warpmesh/warp/bridge/bridgetest"
	kafkabus "github.com/warpmesh/warp/bridge/kafka"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// restartableKafka is a one-broker kfake cluster that keeps its state in a
// directory, so that it can be closed and started again on the same port
// with its topics, records and consumer group offsets: a broker restart as
// the clients see it.
type restartableKafka struct {
	t    *testing.T
	port int
	dir  string
	c    *kfake.Cluster
}

func startRestartableKafka(t *testing.T) *restartableKafka {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	k := &restartableKafka{t: t, port: port, dir: t.TempDir()}
	k.start()
	t.Cleanup(k.stop)
	return k
}

func (k *restartableKafka) start() {
	k.t.Helper()
	// SyncWrites: without it kfake can come back from Close without the
	// last records it acknowledged; the consumers, whose position is past
	// the shortened log, then see nothing until it grows back (the bus
	// resyncs on the gap at that point, far past this test's patience).
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(k.port), kfake.DataDir(k.dir), kfake.SyncWrites())
	if err != nil {
		k.t.Fatal(err)
	}
	k.c = c
}

func (k *restartableKafka) stop() {
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

// breakerTimer is the timer of sarama's circuit breaker, which a producer
// opens after repeated failures: it sleeps 10s and outlives Close.
var breakerTimer = goleak.IgnoreAnyFunction("github.com/eapache/go-resiliency/breaker.(*Breaker).timer")

// TestRestartUnderLoad restarts the Kafka broker on the same port, with
// its data, while one node publishes at a steady rate, and checks on every
// subscription of the two other nodes (a prefix subscription and one per
// key) that loss is never silent: each event arrived once, or the
// subscription got a resync after it was published. Kafka keeps the
// records, so the consumer groups resume where they were: events published
// while the broker was down fail to send, and the receivers must find that
// gap in the publisher's numbering and resync.
func TestRestartUnderLoad(t *testing.T) {
	warptest.LeakCheck(t, metricsArbiter, breakerTimer) // first, so that it runs after every other cleanup
	kc := startRestartableKafka(t)
	nodes := []bustest.Node{{Name: "pub", Zone: "a"}, {Name: "r1", Zone: "b"}, {Name: "r2", Zone: "c"}}
	// A presence interval of 1s (not the helpers' 200ms): a receiver
	// forgets a publisher's numbering after 60 silent intervals, and an
	// outage under the race detector can outlast 12s.
	buses := cluster(t, kc.c, false, nodes, kafkabus.WithPresenceInterval(time.Second))
	load := bridgetest.NewLoad(t, buses[0], buses[1], buses[2])
	load.Start(5 * time.Millisecond)
	load.WaitPublished(t, 40, "before the restart")

	kc.stop()
	// Each publish waits out the producer's retries while the broker is
	// down (about a third of a second): ten are enough to make a gap.
	load.WaitPublished(t, 10, "during the outage")
	kc.start()
	load.WaitPublished(t, 40, "after the restart")
	load.Finish(t)
	t.Logf("publisher: %d publish errors counted; receivers: %d and %d gaps", buses[0].Metrics().PublishErrors,
		buses[1].Health().Gaps, buses[2].Health().Gaps)
}

// stallingProducer is a SyncProducer whose calls hang while stalled, as
// sarama's do while it waits out retries and its circuit breaker.
type stallingProducer struct {
	sarama.SyncProducer
	mu      sync.Mutex
	stalled chan struct{} // closed to release; nil when not stalled
}

func (s *stallingProducer) stall() {
	s.mu.Lock()
	s.stalled = make(chan struct{})
	s.mu.Unlock()
}

func (s *stallingProducer) release() {
	s.mu.Lock()
	close(s.stalled)
	s.stalled = nil
	s.mu.Unlock()
}

func (s *stallingProducer) wait() {
	s.mu.Lock()
	ch := s.stalled
	s.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (s *stallingProducer) SendMessage(m *sarama.ProducerMessage) (int32, int64, error) {
	s.wait()
	return s.SyncProducer.SendMessage(m)
}

func (s *stallingProducer) SendMessages(m []*sarama.ProducerMessage) error {
	s.wait()
	return s.SyncProducer.SendMessages(m)
}

// TestSendTimeoutBoundsAStalledProducer: while the producer hangs, each
// send gives up at the send timeout, the bus reports itself disconnected
// (its Health) instead of waiting, and once the producer answers again the
// bus reconnects and resyncs its subscriptions, once. The produces left
// running end with the producer; Close leaves no goroutine behind.
func TestSendTimeoutBoundsAStalledProducer(t *testing.T) {
	warptest.LeakCheck(t, metricsArbiter)
	kc := startKafka(t)
	topic := newTopic(t, kc, 1)
	p, g := handles(t, kc, "stall")
	sp := &stallingProducer{SyncProducer: p}
	b := kafkabus.NewKafkaBus(sp, g, topic, kafkabus.WithNodeName("stall"), kafkabus.WithSaramaConfig(saramaConfig()),
		kafkabus.WithPresenceInterval(50*time.Millisecond), kafkabus.WithSendTimeout(100*time.Millisecond))
	t.Cleanup(func() {
		_ = b.Close()
		_ = g.Close()
		_ = p.Close()
	})
	ctx := context.Background()
	ch, err := b.SubscribePrefix(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !b.Health().Connected {
		t.Fatal("not connected before the stall")
	}

	sp.stall()
	if err := b.Publish(ctx, "k"); err != nil {
		t.Fatal(err) // queued: the send fails later, counted
	}
	warptest.Eventually(t, 10*time.Second, func() bool { return !b.Health().Connected }, "the bus reports the stalled broker")
	warptest.Eventually(t, 10*time.Second, func() bool { return b.Metrics().PublishErrors >= 1 }, "the send of k gives up")

	sp.release()
	warptest.Eventually(t, 10*time.Second, func() bool { return b.Health().Connected }, "the bus reconnects")
	if n := b.Health().Reconnects; n != 1 {
		t.Errorf("reconnects %d, want 1", n)
	}
	// The publisher delivered k to its own subscription at publish; the
	// reconnection resyncs it.
	var got []syncbus.Event
	warptest.Eventually(t, 10*time.Second, func() bool {
		select {
		case ev := <-ch:
			got = append(got, ev)
		default:
		}
		return len(got) == 2
	}, "k, then a resync")
	if got[0].Key != "k" || got[1].Op != syncbus.OpResync {
		t.Fatalf("got %+v, want k then a resync", got)
	}
}
