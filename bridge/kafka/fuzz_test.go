package kafka_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/warpmesh/warp/bridge/bridgetest"
	kafkabus "github.com/warpmesh/warp/bridge/kafka"
)

// FuzzReceive feeds the bus the records anyone could produce on its topic,
// through its consumer group handler, reply header included. An input is a
// record value (mode 0) or a frame body that the target seals with the
// cluster's key first (mode 1), so the fuzzer reaches past the
// authentication into every frame the bus handles; reply, when not empty,
// travels in the ReplyHeader (a bus acknowledges there when it is shaped
// as an acknowledgement topic of the bus's topic, and on its own topic
// otherwise). For each input: no panic; a
// record that is not a valid frame for this node is exactly one drop,
// counted under the reason wire (or the bridge) gives, and delivers
// nothing; a valid Events frame delivers a subsequence of its events, each
// within wire's limits; a resync names the subscription.
func FuzzReceive(f *testing.F) {
	kc := startKafka(f)
	topic := newTopic(f, kc, 1)
	p, g := handles(f, kc, "rx")
	h := bridgetest.NewReceiveHarness(f)
	b := &ownedBus{KafkaBus: kafkabus.NewKafkaBus(p, g, topic, kafkabus.WithNodeName(h.Name), kafkabus.WithSecretKeys(h.Key),
		kafkabus.WithLabel(h.Label), kafkabus.WithPresenceInterval(time.Minute),
		kafkabus.WithLogger(slog.New(slog.DiscardHandler))), producer: p, group: g}
	f.Cleanup(func() { _ = b.Close() })
	h.Start(f, b, kafkabus.Boot(b.KafkaBus))
	for _, s := range h.Seeds(f) {
		f.Add(s.Mode, s.Data, "")
	}
	f.Add(byte(1), h.Seeds(f)[1].Data, topic) // acknowledgements on the bus's topic, named
	f.Add(byte(1), h.Seeds(f)[1].Data, "no such topic!")
	f.Fuzz(func(t *testing.T, mode byte, data []byte, reply string) {
		if kafkaTopic(reply) && reply != topic {
			// A record may name any topic; the bus then produces its
			// acknowledgements there, retrying while the topic does not
			// exist. Keep them on a topic that does, so that one input
			// costs one produce.
			reply = topic
		}
		var headers []*sarama.RecordHeader
		if reply != "" {
			headers = []*sarama.RecordHeader{nil, {Key: []byte("other"), Value: []byte("x")}, {Key: []byte(kafkabus.ReplyHeader), Value: []byte(reply)}}
		}
		h.Check(t, mode, data, func(msg []byte) { kafkabus.Consume(b.KafkaBus, msg, headers) })
	})
}

// kafkaTopic reports whether s is a name Kafka accepts for a topic.
func kafkaTopic(s string) bool {
	if s == "" || len(s) > 249 || s == "." || s == ".." {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
