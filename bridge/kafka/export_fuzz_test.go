package kafka

import (
	"context"

	"github.com/IBM/sarama"
)

// Hooks for the fuzz target: a record goes through the same claim reader
// (ConsumeClaim, the reply header lookup) as the records of b's consumer
// group, without a broker in between, so each input is judged on its own.

// Consume hands one record of b's topic, with its value and headers, to
// b's consumer group handler, as a claim of a running session would.
func Consume(b *KafkaBus, value []byte, headers []*sarama.RecordHeader) {
	msgs := make(chan *sarama.ConsumerMessage, 1)
	msgs <- &sarama.ConsumerMessage{Topic: b.topic, Value: value, Headers: headers}
	close(msgs)
	h := &handler{b: b}
	h.claims.Store(2) // one more claim than this one: not what makes b ready
	_ = h.ConsumeClaim(fakeSession{}, fakeClaim{topic: b.topic, msgs: msgs})
}

// Boot returns b's incarnation.
func Boot(b *KafkaBus) uint64 { return b.link.Boot() }

type fakeSession struct{}

func (fakeSession) Claims() map[string][]int32                  { return nil }
func (fakeSession) MemberID() string                            { return "fuzz" }
func (fakeSession) GenerationID() int32                         { return 1 }
func (fakeSession) MarkOffset(string, int32, int64, string)     {}
func (fakeSession) Commit()                                     {}
func (fakeSession) ResetOffset(string, int32, int64, string)    {}
func (fakeSession) MarkMessage(*sarama.ConsumerMessage, string) {}
func (fakeSession) Context() context.Context                    { return context.Background() }

type fakeClaim struct {
	topic string
	msgs  chan *sarama.ConsumerMessage
}

func (c fakeClaim) Topic() string                            { return c.topic }
func (fakeClaim) Partition() int32                           { return 0 }
func (fakeClaim) InitialOffset() int64                       { return 0 }
func (fakeClaim) HighWaterMarkOffset() int64                 { return 0 }
func (c fakeClaim) Messages() <-chan *sarama.ConsumerMessage { return c.msgs }
