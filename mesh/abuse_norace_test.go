//go:build !race

package mesh_test

import "time"

// Sizes of the abuse tests without the race detector: the full floods.
const (
	// secBadFlood is how many datagrams of each kind of garbage the bad
	// datagram flood sends.
	secBadFlood = 100_000
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
)
