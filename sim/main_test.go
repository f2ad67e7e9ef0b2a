package sim_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/warpmesh/warp/membership/membershiptest"
)

// seedFlag replays the simulation tests with one seed.
var seedFlag = flag.Uint64("sim.seed", 0, "run the simulation tests with this seed instead of their own")

// TestMain fails the package's tests if a goroutine outlives them: every
// network, cluster and node must stop on Close (memberlist's own
// short-lived stragglers aside).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(membershiptest.LeakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testSeed returns the seed test t runs with — its own, or -sim.seed —
// logs it, and prints it with the command that replays the test when the
// test fails.
func testSeed(t testing.TB, own uint64) uint64 {
	t.Helper()
	seed := own
	if *seedFlag != 0 {
		seed = *seedFlag
	}
	t.Logf("seed %d", seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FAILED with seed %d; replay: go test ./sim -run '^%s$' -sim.seed %d -v", seed, t.Name(), seed)
		}
	})
	return seed
}
