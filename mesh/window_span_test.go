package mesh

import (
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// TestDigestKeepsWindowSpanBounded: a receive window never spans more than
// maxSpan numbers, whatever a digest announces, and giving up a gap costs
// the numbers held, not the numbers spanned. Otherwise one digest naming
// 2^40, sealed with the cluster key by a faulty or compromised peer, would
// stretch the window without bound and the next abandon would spin the
// event loop for good.
//
// The handler runs in a goroutine with a deadline, so that a regression is
// reported rather than hanging the test binary.
func TestDigestKeepsWindowSpanBounded(t *testing.T) {
	disp, err := syncbus.NewDispatcher(syncbus.DispatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer disp.Close()
	b := &MeshBus{name: "me", disp: disp}
	s := &loopState{windows: make(map[originKey]*recvWindow), gapped: make(map[originKey]*recvWindow)}
	w := b.window(s, "peer", 1)
	w.accept(1, nanotime())

	done := make(chan struct{})
	go func() {
		defer close(done)
		b.onDigest(s, &wire.Digest{Origin: "peer", Boot: 1, Seq: 1 << 40})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("onDigest did not return within 10s: the window is walked number by number")
	}
	if span := w.highest - w.next; span > maxSpan {
		t.Errorf("after a digest naming 2^40 the window spans %d numbers, more than maxSpan (%d): abandoning its gap walks them all", span, maxSpan)
	}
}

// TestForgottenIncarnationResyncs: once the window of an incarnation the
// membership forgot was freed, hearing from that incarnation again resyncs
// the subscriptions (what it published meanwhile is unknowable), once.
func TestForgottenIncarnationResyncs(t *testing.T) {
	disp, err := syncbus.NewDispatcher(syncbus.DispatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer disp.Close()
	ch, err := disp.SubscribePrefix(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	b := &MeshBus{name: "me", disp: disp}
	s := &loopState{windows: make(map[originKey]*recvWindow), gapped: make(map[originKey]*recvWindow)}
	for i := range maxForgotten + 1 {
		s.forget(originKey{"old", uint64(i)})
	}
	if len(s.forgotten) != maxForgotten || s.forgotten[originKey{"old", 0}] {
		t.Fatalf("forgotten holds %d incarnations, the oldest evicted: %v", len(s.forgotten), !s.forgotten[originKey{"old", 0}])
	}
	b.window(s, "fresh", 1)
	b.window(s, "old", 5)
	b.window(s, "old", 5)
	var resyncs []string
	for len(ch) > 0 {
		ev := <-ch
		if ev.Op == syncbus.OpResync {
			resyncs = append(resyncs, ev.Origin)
		}
	}
	if len(resyncs) != 1 || resyncs[0] != "old" {
		t.Fatalf("resyncs %v, want one for old", resyncs)
	}
}
