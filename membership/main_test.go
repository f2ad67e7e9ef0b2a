package membership

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/warpmesh/warp/membership/membershiptest"
)

// TestMain fails the package's tests if any goroutine outlives them, apart
// from memberlist's own short-lived stragglers.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, membershiptest.LeakOptions()...)
}
