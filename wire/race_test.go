//go:build race

package wire_test

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts that rely on pooling are not checked under it.
const raceEnabled = true
