// Package membershiptest helps the tests of code built on membership.
//
// memberlist's Shutdown does not wait for all of its goroutines: a probe
// round, a state exchange or a stream being served when it is called ends
// on its own a little later, within memberlist's probe interval or TCP
// timeout. A leak check that runs right after Close sees them. LeakOptions
// names exactly those goroutines, so that the check can ignore them and
// still catch every goroutine of ours, and every idle memberlist goroutine
// that only a missing Shutdown would leave behind.
//
// Like every package ending in "test", it is for tests only: production
// code never imports it.
package membershiptest

import "go.uber.org/goleak"

// LeakOptions returns goleak options that ignore memberlist's goroutines
// that may outlive its Shutdown for a short, bounded time. Add them to a
// goleak check after closing every Membership.
func LeakOptions() []goleak.Option {
	const ml = "github.com/hashicorp/memberlist.(*Memberlist)."
	return []goleak.Option{
		// A probe round waits for acks up to the probe interval.
		goleak.IgnoreAnyFunction(ml + "probeNode"),
		// Its TCP fallback ping, bounded by the same deadline.
		goleak.IgnoreAnyFunction(ml + "probeNode.func3"),
		// The nack timer of an indirect probe, bounded by the probe timeout.
		goleak.IgnoreAnyFunction(ml + "handleIndirectPing.func2"),
		// A periodic state exchange in progress, bounded by the TCP timeout.
		goleak.IgnoreAnyFunction(ml + "pushPull"),
		// A stream being served, bounded by the TCP timeout.
		goleak.IgnoreAnyFunction(ml + "handleConn"),
	}
}
