package nats_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/warpmesh/warp/bridge/bridgetest"
	natsbus "github.com/warpmesh/warp/bridge/nats"
)

// FuzzReceive feeds the bus the messages anyone could publish on its
// subject. An input is a message (mode 0) or a frame body that the target
// seals with the cluster's key first (mode 1), so the fuzzer reaches past
// the authentication into every frame the bus handles. For each input:
// no panic; a message that is not a valid frame for this node is exactly
// one drop, counted under the reason wire (or the bridge) gives, and
// delivers nothing; a valid Events frame delivers a subsequence of its
// events, each within wire's limits; a resync names the subscription.
func FuzzReceive(f *testing.F) {
	srv := startServer(f)
	nc := srv.connect(f, "fuzz")
	f.Cleanup(nc.Close)
	h := bridgetest.NewReceiveHarness(f)
	b := natsbus.NewNATSBus(nc, newSubject(), natsbus.WithNodeName(h.Name), natsbus.WithSecretKeys(h.Key),
		natsbus.WithLabel(h.Label), natsbus.WithPresenceInterval(time.Minute),
		natsbus.WithLogger(slog.New(slog.DiscardHandler)))
	f.Cleanup(func() { _ = b.Close() })
	h.Start(f, b, natsbus.Boot(b))
	for _, s := range h.Seeds(f) {
		f.Add(s.Mode, s.Data, "_INBOX.seed")
	}
	f.Fuzz(func(t *testing.T, mode byte, data []byte, reply string) {
		if !natsSubject(reply) {
			reply = "" // the server never delivers such a reply subject
		}
		h.Check(t, mode, data, func(msg []byte) { natsbus.Receive(b, msg, reply) })
	})
}

// natsSubject reports whether NATS could deliver s as a reply subject:
// no white space or control characters.
func natsSubject(s string) bool {
	return s != "" && len(s) <= 256 && utf8.ValidString(s) &&
		!strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}
