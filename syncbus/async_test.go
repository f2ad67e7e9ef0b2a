package syncbus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// funcBus is a Bus whose Publish runs a function; the rest is unused by
// the async publisher.
type funcBus struct {
	publish func(ctx context.Context, key string) error
}

func (b *funcBus) Publish(ctx context.Context, key string, _ ...syncbus.PublishOption) error {
	return b.publish(ctx, key)
}
func (b *funcBus) PublishAndAwait(context.Context, string, int, ...syncbus.PublishOption) error {
	return syncbus.ErrQuorumUnsupported
}
func (b *funcBus) PublishAndAwaitTopology(context.Context, string, int, ...syncbus.PublishOption) error {
	return syncbus.ErrQuorumUnsupported
}
func (b *funcBus) Subscribe(context.Context, string) (<-chan syncbus.Event, error) { return nil, nil }
func (b *funcBus) Unsubscribe(context.Context, string, <-chan syncbus.Event) error { return nil }
func (b *funcBus) RevokeLease(context.Context, string) error                       { return nil }
func (b *funcBus) SubscribeLease(context.Context, string) (<-chan syncbus.Event, error) {
	return nil, nil
}
func (b *funcBus) UnsubscribeLease(context.Context, string, <-chan syncbus.Event) error { return nil }

// gateBus blocks every Publish until its ctx ends or the gate opens, and
// reports each start.
type gateBus struct {
	funcBus
	started chan string
	gate    chan struct{}
}

func newGateBus() *gateBus {
	g := &gateBus{started: make(chan string, 100), gate: make(chan struct{})}
	g.publish = func(ctx context.Context, key string) error {
		g.started <- key
		select {
		case <-g.gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g
}

func newAsync(t *testing.T, bus syncbus.Bus, cfg syncbus.AsyncConfig) *syncbus.AsyncPublisher {
	t.Helper()
	p, err := syncbus.NewAsyncPublisher(bus, cfg)
	if err != nil {
		t.Fatalf("NewAsyncPublisher: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// nextError waits for one error on p.Errors().
func nextError(t *testing.T, p *syncbus.AsyncPublisher) *syncbus.PublishError {
	t.Helper()
	select {
	case err, ok := <-p.Errors():
		if !ok {
			t.Fatal("Errors closed")
		}
		var pe *syncbus.PublishError
		if !errors.As(err, &pe) {
			t.Fatalf("error %v (%T) is not a *PublishError", err, err)
		}
		return pe
	case <-time.After(5 * time.Second):
		t.Fatal("no error reported within 5s")
	}
	return nil
}

func TestAsyncPublishes(t *testing.T) {
	bus := syncbus.NewInMemoryBus()
	defer bus.Close()
	ch, _ := bus.SubscribePrefix(context.Background(), "")
	p := newAsync(t, bus, syncbus.AsyncConfig{})
	for i := range 10 {
		if err := p.Publish(fmt.Sprintf("k%d", i), syncbus.WithScope(syncbus.ScopeGlobal)); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for len(seen) < 10 {
		select {
		case ev := <-ch:
			if ev.Scope != syncbus.ScopeGlobal {
				t.Errorf("options not applied: %+v", ev)
			}
			seen[ev.Key] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d of 10 events", len(seen))
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Queued != 10 || s.Published != 10 || s.Failed != 0 || s.Pending != 0 {
		t.Errorf("Stats = %+v", s)
	}
	if err := p.Publish("k"); !errors.Is(err, syncbus.ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, ok := <-p.Errors(); ok {
		t.Error("Errors not closed after Close")
	}
}

func TestAsyncBusError(t *testing.T) {
	boom := errors.New("boom")
	p := newAsync(t, &funcBus{publish: func(context.Context, string) error { return boom }}, syncbus.AsyncConfig{})
	if err := p.Publish("k1"); err != nil {
		t.Fatal(err)
	}
	pe := nextError(t, p)
	if pe.Key != "k1" || !errors.Is(pe, boom) {
		t.Errorf("got %v, want boom for k1", pe)
	}
	if err := p.Publish(""); !errors.Is(err, syncbus.ErrInvalidKey) {
		t.Errorf("Publish(\"\"): %v", err)
	}
}

func TestAsyncTimeout(t *testing.T) {
	g := newGateBus()
	p := newAsync(t, g, syncbus.AsyncConfig{PublishTimeout: 20 * time.Millisecond})
	if err := p.Publish("slow"); err != nil {
		t.Fatal(err)
	}
	pe := nextError(t, p)
	if pe.Key != "slow" || !errors.Is(pe, context.DeadlineExceeded) {
		t.Errorf("got %v, want a deadline for slow", pe)
	}
	if s := p.Stats(); s.Failed != 1 {
		t.Errorf("Failed = %d", s.Failed)
	}
}

func TestAsyncQueueFull(t *testing.T) {
	g := newGateBus()
	p := newAsync(t, g, syncbus.AsyncConfig{QueueSize: 2, Workers: 1})
	_ = p.Publish("first")
	<-g.started // the worker holds "first"
	_ = p.Publish("q1")
	_ = p.Publish("q2")
	if err := p.Publish("over"); err != nil {
		t.Fatalf("Publish with a full queue returned %v; it must not fail or block", err)
	}
	pe := nextError(t, p)
	if pe.Key != "over" || !errors.Is(pe, syncbus.ErrQueueFull) {
		t.Errorf("got %v, want ErrQueueFull for over", pe)
	}
	close(g.gate)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Queued != 3 || s.Published != 3 || s.Dropped != 1 {
		t.Errorf("Stats = %+v, want Queued 3 Published 3 Dropped 1", s)
	}
}

func TestAsyncErrorsNotRead(t *testing.T) {
	var calls atomic.Int32
	fail := &funcBus{publish: func(context.Context, string) error { calls.Add(1); return errors.New("no") }}
	p := newAsync(t, fail, syncbus.AsyncConfig{ErrorBuffer: 1})
	for i := range 5 {
		_ = p.Publish(fmt.Sprint(i))
	}
	eventually(t, 5*time.Second, "five publishes failed", func() bool { return p.Stats().Failed == 5 })
	if s := p.Stats(); s.ErrorsDropped != 4 {
		t.Errorf("ErrorsDropped = %d, want 4", s.ErrorsDropped)
	}
}

// TestAsyncCloseGivesUp: a bus that never finishes makes Close cancel the
// publishes in flight, abandon the queued ones and say so.
func TestAsyncCloseGivesUp(t *testing.T) {
	g := newGateBus()
	p := newAsync(t, g, syncbus.AsyncConfig{Workers: 1, QueueSize: 10, PublishTimeout: time.Hour})
	for i := range 4 {
		_ = p.Publish(fmt.Sprint(i))
	}
	<-g.started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := p.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want a deadline error", err)
	}
	s := p.Stats()
	if s.Abandoned != 3 || s.Failed != 1 || s.Published != 0 {
		t.Errorf("Stats = %+v, want Abandoned 3 Failed 1", s)
	}
	var abandoned, cancelled int
	for err := range p.Errors() {
		switch {
		case errors.Is(err, syncbus.ErrAbandoned):
			abandoned++
		case errors.Is(err, context.Canceled):
			cancelled++
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if abandoned != 3 || cancelled != 1 {
		t.Errorf("reported %d abandoned and %d cancelled, want 3 and 1", abandoned, cancelled)
	}
}

func TestAsyncConfig(t *testing.T) {
	bus := &funcBus{publish: func(context.Context, string) error { return nil }}
	if _, err := syncbus.NewAsyncPublisher(nil, syncbus.AsyncConfig{}); err == nil {
		t.Error("nil bus: nil error")
	}
	for name, cfg := range map[string]syncbus.AsyncConfig{
		"QueueSize":      {QueueSize: -1},
		"Workers":        {Workers: -1},
		"ErrorBuffer":    {ErrorBuffer: -1},
		"PublishTimeout": {PublishTimeout: -1},
		"DrainTimeout":   {DrainTimeout: -1},
	} {
		if _, err := syncbus.NewAsyncPublisher(bus, cfg); err == nil {
			t.Errorf("negative %s: nil error", name)
		}
	}
}

// TestAsyncConcurrentClose: publishes racing Close either queue (and are
// then published) or see ErrClosed; nothing is lost silently.
func TestAsyncConcurrentClose(t *testing.T) {
	var published atomic.Int64
	bus := &funcBus{publish: func(context.Context, string) error { published.Add(1); return nil }}
	p, err := syncbus.NewAsyncPublisher(bus, syncbus.AsyncConfig{QueueSize: 4096, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var accepted, refused atomic.Int64
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				switch err := p.Publish(fmt.Sprintf("%d/%d", g, i)); {
				case err == nil:
					accepted.Add(1)
				case errors.Is(err, syncbus.ErrClosed):
					refused.Add(1)
				default:
					t.Errorf("Publish: %v", err)
				}
			}
		}()
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	s := p.Stats()
	if accepted.Load()+refused.Load() != 800 || int64(s.Queued+s.Dropped) != accepted.Load() || int64(s.Published) != published.Load() || s.Queued != s.Published {
		t.Errorf("accepted %d refused %d published %d, Stats %+v", accepted.Load(), refused.Load(), published.Load(), s)
	}
}
