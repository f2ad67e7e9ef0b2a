package kafka

import (
	"strings"
	"testing"
)

// TestReplyHeaderNamesOnlyAckTopics: a record's ReplyHeader makes
// receivers produce acks to the topic it names only when that topic is
// shaped as an acknowledgement topic of the bus's own topic.
func TestReplyHeaderNamesOnlyAckTopics(t *testing.T) {
	long := strings.Repeat("t", 249)
	for _, c := range []struct {
		topic, reply string
		want         bool
	}{
		{"events", "events.acks.0123456789abcdef", true},
		{long, long[:200] + ".acks.0123456789abcdef", true},
		{"events", "events", false},
		{"events", "payments", false},
		{"events", "other.acks.0123456789abcdef", false},
		{"events", "events.acks.0123456789abcde", false},   // 15 digits
		{"events", "events.acks.0123456789abcdef0", false}, // 17
		{"events", "events.acks.0123456789abcdeg", false},  // not hex
		{"events", "events.acks.", false},
		{"events", "xevents.acks.0123456789abcdef", false},
	} {
		if got := isAckTopic(c.topic, c.reply); got != c.want {
			t.Errorf("isAckTopic(%.20q, %.30q) = %v, want %v", c.topic, c.reply, got, c.want)
		}
	}
}
