//go:build race

package sim_test

import "testing"

// TestLarge20 is the 1000-node scenario's 20-node twin, run under the race
// detector.
func TestLarge20(t *testing.T) { checkLarge(t, 4) }
