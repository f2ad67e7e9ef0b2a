package warptest

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warpmesh/warp/syncbus"
)

// Next receives one event from ch, failing the test when ch closes or
// nothing arrives within timeout; what names the wait in the failure.
func Next(t testing.TB, ch <-chan syncbus.Event, timeout time.Duration, what string) syncbus.Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return ev
	case <-timer.C:
		t.Fatalf("%s: no event within %v", what, timeout)
	}
	return syncbus.Event{}
}

// LeakCheck checks, after every cleanup t registers later has run, that
// the goroutines started since the call are gone; extra adds goleak
// options (a client library's goroutine that never exits, say). Call it
// first in a test, so that it runs after the cleanups that stop servers
// and close buses.
func LeakCheck(t testing.TB, extra ...goleak.Option) {
	t.Helper()
	opts := append([]goleak.Option{goleak.IgnoreCurrent()}, extra...)
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}
