package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	kafkabus "github.com/warpmesh/warp/bridge/kafka"
)

// Topics of the raw client's rows, one partition each. A message whose
// value starts with kafkaAskAck asks its consumers to produce its key to
// kafkaAckTopic once stored: the raw client's PublishAndAwait(4).
const (
	kafkaTopic    = "warp-bench-raw"
	kafkaAckTopic = "warp-bench-raw-acks"
	kafkaAskAck   = '?'
)

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "warp-bench"
	c.Producer.Return.Successes = true
	c.Consumer.Offsets.Initial = sarama.OffsetNewest
	c.Metadata.RefreshFrequency = time.Minute
	return c
}

// kafkaRaw is Kafka with the raw sarama client: a producer (synchronous for
// the latency phases, asynchronous for the floods, as one would publish a
// stream) and four partition consumers, each on a client of its own and
// read by a goroutine of its own.
type kafkaRaw struct {
	keys      *keySet
	producer  sarama.SyncProducer
	async     sarama.AsyncProducer
	asyncErrs atomic.Int64
	consumers []sarama.Consumer
	pcs       []sarama.PartitionConsumer
	ackers    []sarama.SyncProducer
	recv      []*receiver
	replies   chan string
	wg        sync.WaitGroup
	sent      traffic
	closed    []bool
}

func startKafkaRaw(addrs []string, keys *keySet) (*kafkaRaw, error) {
	t := &kafkaRaw{keys: keys, replies: make(chan string, 64)}
	fail := func(err error) (*kafkaRaw, error) {
		t.close()
		return nil, err
	}
	var err error
	if t.producer, err = sarama.NewSyncProducer(addrs, saramaConfig()); err != nil {
		return fail(fmt.Errorf("producer: %w", err))
	}
	ac := saramaConfig()
	ac.Producer.Return.Successes = false
	ac.Producer.Return.Errors = true
	if t.async, err = sarama.NewAsyncProducer(addrs, ac); err != nil {
		return fail(fmt.Errorf("async producer: %w", err))
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for range t.async.Errors() {
			t.asyncErrs.Add(1)
		}
	}()
	consume := func(topic string, handle func(*sarama.ConsumerMessage)) error {
		c, err := sarama.NewConsumer(addrs, saramaConfig())
		if err != nil {
			return err
		}
		t.consumers = append(t.consumers, c)
		pc, err := c.ConsumePartition(topic, 0, sarama.OffsetNewest)
		if err != nil {
			return err
		}
		t.pcs, t.closed = append(t.pcs, pc), append(t.closed, false)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			for m := range pc.Messages() {
				handle(m)
			}
		}()
		return nil
	}
	for range 4 {
		acker, err := sarama.NewSyncProducer(addrs, saramaConfig())
		if err != nil {
			return fail(fmt.Errorf("producer: %w", err))
		}
		t.ackers = append(t.ackers, acker)
		rc := newReceiver()
		t.recv = append(t.recv, rc)
		if err := consume(kafkaTopic, func(m *sarama.ConsumerMessage) {
			if len(m.Value) > 0 && m.Value[0] == kafkaAskAck {
				rc.deliver(string(m.Value[1:]))
				_, _, _ = acker.SendMessage(&sarama.ProducerMessage{Topic: kafkaAckTopic, Value: sarama.ByteEncoder(m.Value[1:])})
				return
			}
			rc.deliver(string(m.Value))
		}); err != nil {
			return fail(fmt.Errorf("consumer: %w", err))
		}
	}
	if err := consume(kafkaAckTopic, func(m *sarama.ConsumerMessage) {
		select {
		case t.replies <- string(m.Value):
		default: // nobody waits: a straggler
		}
	}); err != nil {
		return fail(fmt.Errorf("consumer: %w", err))
	}
	return t, nil
}

func (t *kafkaRaw) info() targetInfo {
	return targetInfo{
		eventual: "produce (synchronous), until 4 consumers have it",
		await:    "produce, until 4 acks are back on an ack topic",
		floods:   true,
		cpuScope: "this process: kfake, the clients and the harness",
	}
}

func (t *kafkaRaw) receivers() []*receiver { return t.recv }

func (t *kafkaRaw) send(value []byte) error {
	t.sent.msgs++
	t.sent.bytes += uint64(len(value))
	_, _, err := t.producer.SendMessage(&sarama.ProducerMessage{Topic: kafkaTopic, Value: sarama.ByteEncoder(value)})
	return err
}

func (t *kafkaRaw) publish(_ context.Context, i int) error { return t.send(t.keys.bytes(i)) }

func (t *kafkaRaw) await(ctx context.Context, i int) error {
	key := t.keys.key(i)
	if err := t.send(append([]byte{kafkaAskAck}, key...)); err != nil {
		return err
	}
	return awaitAnswers(ctx, t.replies, "acks", func(k string) bool { return k == key })
}

func (t *kafkaRaw) topology(context.Context, int) error { return errNotApplicable }

func (t *kafkaRaw) flood(ctx context.Context, from, n int) (int, error) {
	before := t.asyncErrs.Load()
	for i := from; i < from+n; i++ {
		k := t.keys.bytes(i)
		select {
		case t.async.Input() <- &sarama.ProducerMessage{Topic: kafkaTopic, Value: sarama.ByteEncoder(k)}:
		case <-ctx.Done():
			return int(t.asyncErrs.Load() - before), ctx.Err()
		}
		t.sent.msgs++
		t.sent.bytes += uint64(len(k))
	}
	return int(t.asyncErrs.Load() - before), nil
}

func (t *kafkaRaw) traffic() traffic { return t.sent }

func (t *kafkaRaw) shrink(context.Context) error {
	for i := 2; i < 4 && i < len(t.pcs); i++ {
		t.closePC(i)
	}
	return nil
}

func (t *kafkaRaw) closePC(i int) {
	if !t.closed[i] {
		t.closed[i] = true
		_ = t.pcs[i].Close()
		_ = t.consumers[i].Close()
	}
}

func (t *kafkaRaw) extraCPU() time.Duration { return 0 }

func (t *kafkaRaw) close() {
	for i := range t.pcs {
		t.closePC(i)
	}
	for i := len(t.pcs); i < len(t.consumers); i++ {
		_ = t.consumers[i].Close()
	}
	if t.async != nil {
		_ = t.async.Close() // closes its Errors channel, which ends its reader
	}
	t.wg.Wait()
	if t.producer != nil {
		_ = t.producer.Close()
	}
	for _, p := range t.ackers {
		_ = p.Close()
	}
}

func startKafkaBridge(ctx context.Context, addrs []string, keys *keySet) (*bridgeTarget, error) {
	secret := bridgeSecret()
	return startBridge(ctx, keys, "this process: kfake, the 5 nodes and the harness",
		func(name, zone string) (*bridgeNode, error) {
			b, err := kafkabus.NewKafkaBusFromBrokers(addrs, "warp-bench-bridge", kafkabus.WithNodeName(name),
				kafkabus.WithZone(zone), kafkabus.WithRegion("r1"), kafkabus.WithSecretKeys(secret),
				kafkabus.WithLabel("warp-bench"), kafkabus.WithSaramaConfig(saramaConfig()))
			if err != nil {
				return nil, err
			}
			return &bridgeNode{bus: b}, nil
		})
}

func (r *runner) runKafka(ctx context.Context, rep *Report, want func(string) bool) {
	r.progress("kafka: starting an in-process Kafka cluster (kfake)")
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, kafkaTopic, kafkaAckTopic))
	if err != nil {
		for _, id := range []string{Kafka, KafkaBridge} {
			if want(id) {
				s := &System{ID: id, Name: systemNames[id]}
				s.fail("start kfake", err)
				rep.add(s)
			}
		}
		return
	}
	defer func() {
		r.progress("kafka: stopping kfake")
		kc.Close()
	}()
	rep.Servers["kfake"] = strings.TrimSpace(moduleVersion("github.com/twmb/franz-go/pkg/kfake") + " (Kafka protocol, in this process)")
	addrs := kc.ListenAddrs()
	if want(Kafka) {
		s := &System{ID: Kafka, Name: systemNames[Kafka]}
		rep.add(s)
		if t, err := startKafkaRaw(addrs, r.keys); err != nil {
			s.fail("start", err)
		} else {
			r.measure(ctx, s, t)
			t.close()
		}
	}
	if want(KafkaBridge) {
		s := &System{ID: KafkaBridge, Name: systemNames[KafkaBridge]}
		rep.add(s)
		r.progress("kafka-bridge: starting 5 nodes")
		sctx, cancel := r.bound(ctx, r.sz.setup)
		t, err := startKafkaBridge(sctx, addrs, r.keys)
		cancel()
		if err != nil {
			s.fail("start", err)
			return
		}
		r.measure(ctx, s, t)
		t.close()
	}
}
