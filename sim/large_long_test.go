//go:build long

package sim_test

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestLarge1000 is the 1000-node run (go test -tags long -run
// TestLarge1000 -timeout 30m ./sim); BENCHMARKS.md records its figures.
// Like warp sim, it keeps the collector's headroom in check with a soft
// memory limit unless GOMEMLIMIT is set.
func TestLarge1000(t *testing.T) {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(3584 << 20))
	}
	checkLarge(t, 200)
}
