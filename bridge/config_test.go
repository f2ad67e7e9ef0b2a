package bridge_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

func nopQuorum(string, []syncbus.Member, syncbus.QuorumKind, int, int) (bridge.Counter, error) {
	return nil, errors.New("unused")
}

// TestConfigure: defaults, scaling, and an error naming each bad option.
func TestConfigure(t *testing.T) {
	cfg, err := bridge.Configure(nopQuorum, bridge.WithTimeScale(10))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Zone != bridge.DefaultZone || cfg.NodeName == "" || cfg.BatchInterval != 10*bridge.DefaultBatchInterval ||
		cfg.AckTimeout != 10*bridge.DefaultAckTimeout || cfg.BatchSize != bridge.DefaultBatchSize ||
		cfg.StallTimeout != 10*bridge.DefaultStallTimeout {
		t.Errorf("defaults at scale 10: %+v", cfg)
	}
	a, _ := bridge.Configure(nopQuorum)
	b, _ := bridge.Configure(nopQuorum)
	if a.NodeName == b.NodeName {
		t.Errorf("two buses got the same default name %q", a.NodeName)
	}
	bad := []struct {
		opt  bridge.Option
		name string
	}{
		{bridge.WithTimeScale(-1), "WithTimeScale"},
		{bridge.WithTimeScale(math.NaN()), "WithTimeScale"},
		{bridge.WithBatchInterval(-time.Millisecond), "WithBatchInterval"},
		{bridge.WithBatchInterval(2 * time.Second), "WithBatchInterval"},
		{bridge.WithBatchSize(-1), "WithBatchSize"},
		{bridge.WithBatchSize(bridge.MaxBatchSize + 1), "WithBatchSize"},
		{bridge.WithAckTimeout(-time.Second), "WithAckTimeout"},
		{bridge.WithPresenceInterval(-time.Second), "WithPresenceInterval"},
		{bridge.WithSendTimeout(-time.Second), "WithSendTimeout"},
		{bridge.WithStallTimeout(-time.Second), "WithStallTimeout"},
		{bridge.WithSecretKeys([]byte("short")), "WithSecretKeys"},
		{bridge.WithNodeName(""), "WithNodeName"},
		{bridge.WithPrefixBuffer(-1), "WithPrefixBuffer"},
		{bridge.WithDedupeWindow(-1), "WithDedupeWindow"},
	}
	for _, c := range bad {
		_, err := bridge.Configure(nopQuorum, c.opt)
		var oe *bridge.OptionError
		if !errors.As(err, &oe) || oe.Option != c.name || !errors.Is(err, bridge.ErrBadOption) {
			t.Errorf("%s: got %v, want an *OptionError naming it", c.name, err)
		}
	}
}

// TestBroken: a core built for a bad option returns its error from every
// call, runs nothing, and closes cleanly.
func TestBroken(t *testing.T) {
	warptest.LeakCheck(t)
	_, err := bridge.Configure(nopQuorum, bridge.WithTimeScale(-1))
	c := bridge.Broken(err)
	ctx := context.Background()
	isBad := func(err error, what string) {
		t.Helper()
		if !errors.Is(err, bridge.ErrBadOption) {
			t.Errorf("%s: got %v, want the option error", what, err)
		}
	}
	isBad(c.Publish(ctx, "k"), "Publish")
	isBad(c.PublishAndAwait(ctx, "k", 1), "PublishAndAwait")
	isBad(c.PublishAndAwaitTopology(ctx, "k", 1), "PublishAndAwaitTopology")
	isBad(c.RevokeLease(ctx, "l"), "RevokeLease")
	_, err = c.Subscribe(ctx, "k")
	isBad(err, "Subscribe")
	_, err = c.SubscribePrefix(ctx, "k")
	isBad(err, "SubscribePrefix")
	_, err = c.SubscribeLease(ctx, "k")
	isBad(err, "SubscribeLease")
	_, err = c.SubscribeAll(ctx)
	isBad(err, "SubscribeAll")
	isBad(c.Relay(ctx, syncbus.Event{ID: syncbus.NewIDGenerator().Next(), Key: "k"}), "Relay")
	isBad(c.WaitForMembers(ctx, 1), "WaitForMembers")
	if h := c.Health(); h.Healthy || !errors.Is(h.Err, bridge.ErrBadOption) {
		t.Errorf("Health %+v", h)
	}
	if c.Members() != nil {
		t.Error("Members of a broken core")
	}
	_ = c.Metrics()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
