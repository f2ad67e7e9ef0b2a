package nats_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// recorder reads a subscription until it closes.
type recorder struct {
	mu      sync.Mutex
	keys    []string
	resyncs []syncbus.Event
	done    chan struct{}
}

func record(ch <-chan syncbus.Event) *recorder {
	r := &recorder{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ev := range ch {
			r.mu.Lock()
			if ev.Op == syncbus.OpResync {
				r.resyncs = append(r.resyncs, ev)
			} else {
				r.keys = append(r.keys, ev.Key)
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) has(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.keys {
		if k == key {
			return true
		}
	}
	return false
}

func (r *recorder) resyncCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.resyncs)
}

// TestServerRestart stops the NATS server mid-stream and starts it again
// on the same port: every bus notices, nats.go reconnects, every
// subscription receives exactly one resync, and delivery and awaited
// publishes resume without any call from the user.
func TestServerRestart(t *testing.T) {
	leakCheck(t) // first, so that it runs after the server's cleanup
	srv := startServer(t)
	nodes := []bustest.Node{{Name: "n1", Zone: "a"}, {Name: "n2", Zone: "b"}, {Name: "n3", Zone: "c"}}
	buses := srv.cluster(t, nodes)
	ctx := context.Background()
	var recs []*recorder
	for _, b := range buses {
		ch, err := b.SubscribePrefix(ctx, "f/")
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, record(ch))
	}
	t.Cleanup(func() {
		for _, b := range buses {
			_ = b.Close()
		}
		for _, r := range recs {
			<-r.done
		}
	})
	if err := buses[0].PublishAndAwait(ctx, "f/before", 2); err != nil {
		t.Fatal(err)
	}

	srv.stop()
	for _, b := range buses {
		eventually(t, 10*time.Second, b.Name()+" notices the outage", func() bool { return !b.Health().Connected })
	}
	// A plain publish during the outage returns nil: nats.go keeps it in
	// its reconnect buffer and sends it once back (whether the others have
	// resubscribed by then is a race: their resync covers it).
	if err := buses[1].Publish(ctx, "f/during"); err != nil {
		t.Errorf("Publish during the outage: %v", err)
	}
	if !recs[1].has("f/during") {
		eventually(t, 10*time.Second, "n2 delivers its own event during the outage", func() bool { return recs[1].has("f/during") })
	}
	// An awaiting publish fails at its deadline.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := buses[0].PublishAndAwait(short, "f/await-during", 2)
	cancel()
	if err == nil {
		t.Error("PublishAndAwait during the outage: got nil")
	}

	srv.start()
	for i, b := range buses {
		eventually(t, 10*time.Second, b.Name()+" reconnects", func() bool {
			h := b.Health()
			return h.Connected && h.Reconnects == 1
		})
		eventually(t, 10*time.Second, b.Name()+" resyncs its subscription", func() bool { return recs[i].resyncCount() >= 1 })
		if err := b.WaitForMembers(ctx, 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := buses[2].PublishAndAwait(ctx, "f/after", 2); err != nil {
		t.Fatalf("PublishAndAwait after the restart: %v", err)
	}
	for i, r := range recs {
		eventually(t, 10*time.Second, buses[i].Name()+" receives the event published after the restart", func() bool { return r.has("f/after") })
		// A slow-consumer drop (the backlog nats.go flushes on reconnect can
		// overrun a receiver on a loaded machine) is a resync of its own.
		want := 1 + int(buses[i].Metrics().DropsByReason["slow-consumer"])
		if n := r.resyncCount(); n != want {
			t.Errorf("%s: %d resyncs, want exactly %d (one, plus one per slow-consumer drop)", buses[i].Name(), n, want)
		}
		r.mu.Lock()
		if rs := r.resyncs; len(rs) > 0 && (rs[0].Key != "f/" || rs[0].Op != syncbus.OpResync) {
			t.Errorf("%s: resync %+v, want Key f/", buses[i].Name(), rs[0])
		}
		r.mu.Unlock()
	}
}
