//go:build race

package mesh_test

import "time"

// Sizes of the abuse tests under the race detector, which slows every
// node several times over: lighter floods of the same shape, which check
// what the floods must not break. Their heaps are not checked: a flood
// this small cannot tell a bounded structure from one that keeps what it
// is given, and the race detector's allocations would blur the figures.
const (
	secKeyFlood  = 20_000
	secKeyWarm   = 5_000
	secKeyLen    = 100
	secDataFlood = time.Second
	secCheckHeap = false

	// The invalid datagram flood: a fifth of the rate, for half a second
	// per kind; WARP_FLOOD_FULL changes nothing under the race detector.
	secFloodRate      = 20_000
	secFloodFor       = 500 * time.Millisecond
	secFloodFullFor   = 0
	secFloodPeakBound = 128 << 20
)
