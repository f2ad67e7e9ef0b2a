//go:build !race

package mesh_test

import "time"

// Sizes of the abuse tests without the race detector: the full floods.
const (
	// secKeyFlood is how many distinct keys the key flood publishes.
	secKeyFlood = 200_000
	// secKeyWarm is how many keys each of the key flood's two warm-up
	// rounds publishes.
	secKeyWarm = 50_000
	// secKeyLen is the length of the key flood's keys.
	secKeyLen = 300
	// secDataFlood is how long the data flood publishes at full speed.
	secDataFlood = 2 * time.Second
	// secCheckHeap says whether the floods check the heap's growth.
	secCheckHeap = true

	// secFloodRate is the invalid datagram flood's target, per second.
	secFloodRate = 100_000
	// secFloodFor is how long each kind of the invalid datagram flood
	// lasts in an ordinary run, secFloodFullFor with WARP_FLOOD_FULL=1.
	secFloodFor     = time.Second
	secFloodFullFor = 10 * time.Second
	// secFloodPeakBound bounds the growth of the heap in use while a
	// flood runs: the transport's queue of 8192 datagrams filled with
	// small ones (2 KiB buffers) and one in 32 of the largest (64 KiB),
	// about 32 MiB, and the garbage the collector has not reclaimed yet
	// (the heap may double its live size between collections). The
	// worst case is larger: SECURITY.md, "Known limits the flood shows".
	secFloodPeakBound = 128 << 20
)
