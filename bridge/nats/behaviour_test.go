package nats_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/warpmesh/warp/bridge"
	natsbus "github.com/warpmesh/warp/bridge/nats"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
	"github.com/warpmesh/warp/wire"
)

// TestBadArguments: a bad option, connection or subject makes every call
// return an error naming it; nothing runs and Close returns nil.
func TestBadArguments(t *testing.T) {
	warptest.LeakCheck(t)
	srv := startServer(t)
	nc := srv.connect(t, "bad")
	defer nc.Close()
	cases := []struct {
		bus  *natsbus.NATSBus
		name string
	}{
		{natsbus.NewNATSBus(nc, "warp.bad", natsbus.WithTimeScale(-1)), "WithTimeScale"},
		{natsbus.NewNATSBus(nc, "warp.bad", natsbus.WithBatchInterval(-time.Second)), "WithBatchInterval"},
		{natsbus.NewNATSBus(nc, "warp.bad", natsbus.WithSecretKeys([]byte("x"))), "WithSecretKeys"},
		{natsbus.NewNATSBus(nc, "warp.bad", natsbus.WithPendingLimits(0, 0)), "WithPendingLimits"},
		{natsbus.NewNATSBus(nil, "warp.bad"), "nc"},
		{natsbus.NewNATSBus(nc, "warp.*"), "subject"},
		{natsbus.NewNATSBus(nc, ""), "subject"},
	}
	ctx := context.Background()
	for _, c := range cases {
		for what, err := range map[string]error{
			"Publish":         c.bus.Publish(ctx, "k"),
			"PublishAndAwait": c.bus.PublishAndAwait(ctx, "k", 1),
			"RevokeLease":     c.bus.RevokeLease(ctx, "k"),
		} {
			var oe *bridge.OptionError
			if !errors.As(err, &oe) || oe.Option != c.name {
				t.Errorf("%s: %s returned %v, want an error naming %s", c.name, what, err, c.name)
			}
		}
		if _, err := c.bus.Subscribe(ctx, "k"); !errors.Is(err, bridge.ErrBadOption) {
			t.Errorf("%s: Subscribe returned %v", c.name, err)
		}
		if err := c.bus.Close(); err != nil {
			t.Errorf("%s: Close: %v", c.name, err)
		}
	}
}

// TestNoEchoConnectionCarriesOneBusPerSubject: the server hands a
// connection made with nats.NoEcho none of its own messages, so a second
// bus of one subject on it would never hear the first; NewNATSBus refuses
// it, naming the connection. Another subject is fine, and so is the same
// subject again once the first bus is closed. Without NoEcho, two buses
// share a connection and hear each other.
func TestNoEchoConnectionCarriesOneBusPerSubject(t *testing.T) {
	warptest.LeakCheck(t)
	srv := startServer(t)
	ctx := context.Background()
	quiet := srv.connect(t, "quiet", natsgo.NoEcho())
	defer quiet.Close()
	subject := newSubject()
	first := natsbus.NewNATSBus(quiet, subject, natsbus.WithNodeName("first"))
	if err := first.Err(); err != nil {
		t.Fatalf("first bus: %v", err)
	}
	second := natsbus.NewNATSBus(quiet, subject, natsbus.WithNodeName("second"))
	var oe *bridge.OptionError
	if err := second.Publish(ctx, "k"); !errors.As(err, &oe) || oe.Option != "nc" {
		t.Errorf("a second bus of %s on a NoEcho connection: Publish returned %v, want an error naming nc", subject, err)
	}
	_ = second.Close()
	other := natsbus.NewNATSBus(quiet, newSubject(), natsbus.WithNodeName("other"))
	if err := other.Err(); err != nil {
		t.Errorf("a bus of another subject: %v", err)
	}
	_ = other.Close()
	_ = first.Close()
	again := natsbus.NewNATSBus(quiet, subject, natsbus.WithNodeName("again"))
	if err := again.Err(); err != nil {
		t.Errorf("the subject again after Close: %v", err)
	}
	_ = again.Close()

	shared := srv.connect(t, "shared")
	defer shared.Close()
	subject = newSubject()
	a := natsbus.NewNATSBus(shared, subject, natsbus.WithNodeName("a"))
	defer a.Close()
	b := natsbus.NewNATSBus(shared, subject, natsbus.WithNodeName("b"))
	defer b.Close()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.WaitForMembers(wctx, 2); err != nil {
		t.Fatalf("two buses on one connection: %v (members %v)", err, a.Members())
	}
	sub, err := b.Subscribe(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.PublishAndAwait(wctx, "k", 1); err != nil {
		t.Errorf("PublishAndAwait across one shared connection: %v", err)
	}
	if ev := next(t, sub, "the event on the shared connection"); ev.Key != "k" || ev.Origin != "a" {
		t.Errorf("got %+v, want k from a", ev)
	}
}

// TestForeignMessages: messages on the subject that are not frames of
// this cluster — garbage, another label's, another key's, a forged one —
// are dropped and counted by reason, never delivered.
func TestForeignMessages(t *testing.T) {
	warptest.LeakCheck(t)
	srv := startServer(t)
	key := bytes.Repeat([]byte{1}, 32)
	buses := srv.cluster(t, []bustest.Node{{Name: "a", Zone: "z"}, {Name: "b", Zone: "z"}},
		natsbus.WithSecretKeys(key), natsbus.WithLabel("prod"))
	subject := buses[0].Subject()
	ctx := context.Background()
	sub, err := buses[1].SubscribePrefix(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	raw := srv.connect(t, "raw")
	defer raw.Close()

	frame := func(kr *wire.Keyring, label string) []byte {
		body, err := wire.AppendEvents(nil, &wire.Events{Origin: "intruder", Boot: 1, Events: []wire.Event{{Seq: 1, ID: syncbus.NewIDGenerator().Next(), Key: "evil"}}}, false)
		if err != nil {
			t.Fatal(err)
		}
		f, err := wire.NewSealer(kr, label).Seal(nil, body)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	good, _ := wire.NewKeyring(key)
	other, _ := wire.NewKeyring(bytes.Repeat([]byte{2}, 32))
	forged := frame(good, "prod")
	forged[len(forged)-1] ^= 1
	truncated := frame(good, "prod")[:40]
	msgs := map[string][]byte{
		"foreign":   []byte("hello, not a frame"),
		"label":     frame(good, "staging"),
		"auth":      frame(other, "prod"),
		"malformed": truncated,
	}
	for _, m := range msgs {
		if err := raw.Publish(subject, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Publish(subject, forged); err != nil {
		t.Fatal(err)
	}
	if err := raw.Publish(subject, nil); err != nil {
		t.Fatal(err)
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	// The witness: a real event after them.
	if err := buses[0].Publish(ctx, "real"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, sub, "b: the real event"); ev.Key != "real" {
		t.Fatalf("b: got %+v first, want the real event", ev)
	}
	select {
	case ev := <-sub:
		t.Errorf("b: delivered %+v", ev)
	default:
	}
	drops := buses[1].Metrics().DropsByReason
	for reason := range msgs {
		if drops[reason] == 0 {
			t.Errorf("no drop counted for %q: %v", reason, drops)
		}
	}
	if drops["auth"] < 2 || drops["foreign"] < 2 {
		t.Errorf("the forged frame and the empty message: drops %v", drops)
	}
}

// TestKeysOfAnyBytes: keys travel inside frames, so NATS's subject syntax
// never sees them.
func TestKeysOfAnyBytes(t *testing.T) {
	warptest.LeakCheck(t)
	srv := startServer(t)
	buses := srv.cluster(t, []bustest.Node{{Name: "a", Zone: "z"}, {Name: "b", Zone: "z"}})
	ctx := context.Background()
	for _, key := range []string{"a.b.c", "with space", "*", ">", "a.*.>", "ünïcödé/ключ", "nul\x00byte", "\xff\xfe"} {
		sub, err := buses[1].Subscribe(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if err := buses[0].PublishAndAwait(ctx, key, 1); err != nil {
			t.Fatalf("%q: %v", key, err)
		}
		if ev := next(t, sub, key); ev.Key != key {
			t.Errorf("got key %q, want %q", ev.Key, key)
		}
	}
}

// TestSlowConsumer: when nats.go drops messages because the bus fell
// behind (a tiny pending limit here), every subscription gets a resync.
func TestSlowConsumer(t *testing.T) {
	warptest.LeakCheck(t)
	srv := startServer(t)
	buses := srv.cluster(t, []bustest.Node{{Name: "a", Zone: "z"}}, natsbus.WithPendingLimits(1, 1<<20))
	ctx := context.Background()
	sub, err := buses[0].Subscribe(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	raw := srv.connect(t, "raw")
	defer raw.Close()
	payload := bytes.Repeat([]byte("x"), 512)
	eventually(t, 10*time.Second, "a slow-consumer drop", func() bool {
		for range 2000 {
			_ = raw.Publish(buses[0].Subject(), payload)
		}
		_ = raw.Flush()
		return buses[0].Metrics().DropsByReason["slow-consumer"] > 0
	})
	if ev := next(t, sub, "resync"); ev.Op != syncbus.OpResync || ev.Key != "k" {
		t.Errorf("got %+v, want a resync of k", ev)
	}
}

// TestConnectionClosed: a connection closed under the bus makes it
// unhealthy, and every call returns an error matching
// bridge.ErrUnavailable.
func TestConnectionClosed(t *testing.T) {
	warptest.LeakCheck(t)
	srv := startServer(t)
	nc := srv.connect(t, "doomed")
	b := natsbus.NewNATSBus(nc, newSubject(), natsbus.WithNodeName("doomed"))
	defer b.Close()
	if !b.Health().Healthy {
		t.Fatalf("Health %+v", b.Health())
	}
	nc.Close()
	eventually(t, 10*time.Second, "unhealthy", func() bool { return !b.Health().Healthy })
	if err := b.Publish(context.Background(), "k"); !errors.Is(err, bridge.ErrUnavailable) {
		t.Errorf("Publish: got %v, want ErrUnavailable", err)
	}
	if _, err := b.Subscribe(context.Background(), "k"); !errors.Is(err, bridge.ErrUnavailable) {
		t.Errorf("Subscribe: got %v, want ErrUnavailable", err)
	}
	_ = natsgo.ErrConnectionClosed
}

// TestBatching: a burst shares messages; with WithBatchSize(1) every
// event is a message of its own. Every event arrives either way.
func TestBatching(t *testing.T) {
	warptest.LeakCheck(t)
	srv := startServer(t)
	const n = 3000
	for _, batch := range []int{0, 1} {
		var opts []natsbus.Option
		if batch > 0 {
			opts = append(opts, natsbus.WithBatchSize(batch))
		}
		opts = append(opts, natsbus.WithPrefixBuffer(2*n))
		buses := srv.cluster(t, []bustest.Node{{Name: "a", Zone: "z"}, {Name: "b", Zone: "z"}}, opts...)
		ctx := context.Background()
		sub, err := buses[1].SubscribePrefix(ctx, "burst/")
		if err != nil {
			t.Fatal(err)
		}
		before := buses[0].Metrics().Batches
		for i := range n {
			if err := buses[0].Publish(ctx, "burst/"+string(rune('a'+i%26))); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			if ev := next(t, sub, "burst"); ev.Op != syncbus.OpInvalidate {
				t.Fatalf("event %d: %+v", i, ev)
			}
		}
		frames := buses[0].Metrics().Batches - before
		switch {
		case batch == 1 && frames != n:
			t.Errorf("WithBatchSize(1): %d frames for %d events, want one each", frames, n)
		case batch == 0 && frames >= n/2:
			t.Errorf("default batching: %d frames for %d events in a burst", frames, n)
		}
		for _, b := range buses {
			_ = b.Close()
		}
	}
}

// TestKeyRotationWhileRunning: keys rotate on live buses as on the mesh —
// add the new key everywhere, make it primary everywhere, remove the old
// one — while events flow, with none lost and no resync; afterwards a
// frame sealed with the old key is refused.
func TestKeyRotationWhileRunning(t *testing.T) {
	warptest.LeakCheck(t)
	srv := startServer(t)
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{3}, 32)
	buses := srv.cluster(t, []bustest.Node{{Name: "a", Zone: "z"}, {Name: "b", Zone: "z"}}, natsbus.WithSecretKeys(oldKey))
	ctx := context.Background()
	sub, err := buses[1].SubscribePrefix(ctx, "rot:")
	if err != nil {
		t.Fatal(err)
	}
	published := 0
	publish := func(n int) {
		for range n {
			if err := buses[0].Publish(ctx, fmt.Sprintf("rot:%d", published)); err != nil {
				t.Fatal(err)
			}
			published++
		}
	}
	steps := []struct {
		name   string
		change func(b *ownedBus) error
	}{
		{"AddKey", func(b *ownedBus) error { return b.AddKey(newKey) }},
		{"UseKey", func(b *ownedBus) error { return b.UseKey(newKey) }},
		{"RemoveKey", func(b *ownedBus) error { return b.RemoveKey(oldKey) }},
	}
	seen := map[string]bool{}
	// drain reads b's subscription until it has every event published so
	// far. A rotation step is taken once the previous one has reached
	// every bus and the frames sealed before it have arrived, as an
	// operator rotating keys waits between the steps.
	drain := func() {
		for len(seen) < published {
			ev := next(t, sub, fmt.Sprintf("event %d of %d", len(seen)+1, published))
			if ev.Op == syncbus.OpResync {
				t.Fatalf("a resync during the rotation: %+v; drops a %v, b %v", ev, buses[0].Metrics().DropsByReason, buses[1].Metrics().DropsByReason)
			}
			seen[ev.Key] = true
		}
	}
	publish(100)
	for _, step := range steps {
		// One bus changes before the other: the cluster is mixed meanwhile.
		for _, b := range buses {
			drain()
			if err := step.change(b); err != nil {
				t.Fatalf("%s on %s: %v", step.name, b.Name(), err)
			}
			publish(100)
		}
	}
	drain()
	for _, b := range buses {
		if d := b.Metrics().DropsByReason; len(d) != 0 {
			t.Errorf("%s dropped frames during the rotation: %v", b.Name(), d)
		}
	}
	if err := buses[0].RemoveKey(newKey); err == nil {
		t.Error("the primary key could be removed")
	}
	// The old key is gone: a frame sealed with it is refused.
	before := buses[1].Metrics().DropsByReason["auth"]
	oldRing, _ := wire.NewKeyring(oldKey)
	body, err := wire.AppendEvents(nil, &wire.Events{Origin: "a", Boot: 1, Events: []wire.Event{{Seq: 1, ID: syncbus.NewIDGenerator().Next(), Key: "rot:stale"}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	frame, err := wire.NewSealer(oldRing, "").Seal(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	raw := srv.connect(t, "raw")
	defer raw.Close()
	if err := raw.Publish(buses[0].Subject(), frame); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the old key's frame to be refused", func() bool {
		return buses[1].Metrics().DropsByReason["auth"] > before
	})
	if err := buses[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := buses[0].AddKey(oldKey); !errors.Is(err, syncbus.ErrClosed) {
		t.Errorf("AddKey after Close: %v, want ErrClosed", err)
	}
}
