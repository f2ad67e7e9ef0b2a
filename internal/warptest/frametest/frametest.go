// Package frametest builds what the tests of `warp decode` and of its
// parsers read: a sealed Events frame, and a binary string as redis-cli
// prints it.
//
// Like every package ending in "test", it is for tests only.
package frametest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// Events seals, with key (nil: none) and label, an Events frame of node-a
// (boot 7, zone eu-1a, region eu) holding two events: an invalidation of
// user:42, and a revocation of lease lease-9 whose publisher awaits acks.
func Events(t testing.TB, key []byte, label string) []byte {
	t.Helper()
	var keys [][]byte
	if key != nil {
		keys = append(keys, key)
	}
	kr, err := wire.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	ids := syncbus.NewIDGenerator()
	f := &wire.Events{Origin: "node-a", Boot: 7, Zone: "eu-1a", Region: "eu", Events: []wire.Event{
		{Seq: 1, ID: ids.Next(), Key: "user:42", Op: syncbus.OpInvalidate, Time: time.Now().UnixNano()},
		{Seq: 2, ID: ids.Next(), Key: "lease-9", Op: syncbus.OpLeaseRevoke, Flags: wire.EventAckWanted, Time: time.Now().UnixNano()},
	}}
	body, err := wire.AppendEvents(nil, f, true)
	if err != nil {
		t.Fatal(err)
	}
	frame, err := wire.NewSealer(kr, label).Seal(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	return frame
}

// QuoteRedis quotes b as redis-cli prints a binary string.
func QuoteRedis(b []byte) string {
	var s strings.Builder
	s.WriteByte('"')
	for _, c := range b {
		switch {
		case c == '\\' || c == '"':
			s.WriteByte('\\')
			s.WriteByte(c)
		case c == '\n':
			s.WriteString(`\n`)
		case c == '\r':
			s.WriteString(`\r`)
		case c == '\t':
			s.WriteString(`\t`)
		case c == '\a':
			s.WriteString(`\a`)
		case c == '\b':
			s.WriteString(`\b`)
		case c >= 0x20 && c < 0x7f:
			s.WriteByte(c)
		default:
			fmt.Fprintf(&s, `\x%02x`, c)
		}
	}
	s.WriteByte('"')
	return s.String()
}
