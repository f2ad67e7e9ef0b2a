//go:build !race

package sim_test

import "testing"

// TestLarge200 is the 1000-node scenario's 200-node twin, run by every
// test run without the race detector.
func TestLarge200(t *testing.T) {
	if testing.Short() {
		t.Skip("200 nodes take a minute")
	}
	checkLarge(t, 40)
}
