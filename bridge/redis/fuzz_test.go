package redis_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/warpmesh/warp/bridge/bridgetest"
	redisbus "github.com/warpmesh/warp/bridge/redis"
)

// FuzzReceive feeds the bus the messages anyone could publish on its
// channel (or on its acknowledgement channel: both reach the same reader).
// An input is a payload (mode 0) or a frame body that the target seals
// with the cluster's key first (mode 1), so the fuzzer reaches past the
// authentication into every frame the bus handles. For each input: no
// panic; a payload that is not a valid frame for this node is exactly one
// drop, counted under the reason wire (or the bridge) gives, and delivers
// nothing; a valid Events frame delivers a subsequence of its events, each
// within wire's limits; a resync names the subscription.
func FuzzReceive(f *testing.F) {
	srv := startRedis(f)
	h := bridgetest.NewReceiveHarness(f)
	c := srv.client()
	b := &ownedBus{RedisBus: redisbus.NewRedisBus(c, newChannel(), redisbus.WithNodeName(h.Name), redisbus.WithSecretKeys(h.Key),
		redisbus.WithLabel(h.Label), redisbus.WithPresenceInterval(time.Minute),
		redisbus.WithLogger(slog.New(slog.DiscardHandler))), client: c}
	f.Cleanup(func() { _ = b.Close() })
	h.Start(f, b, redisbus.Boot(b.RedisBus))
	for _, s := range h.Seeds(f) {
		f.Add(s.Mode, s.Data)
	}
	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		h.Check(t, mode, data, func(msg []byte) { redisbus.Receive(b.RedisBus, string(msg)) })
	})
}
