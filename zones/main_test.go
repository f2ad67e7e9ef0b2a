package zones_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind. zones starts
// none; the check keeps it that way and covers the concurrency tests' own
// goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
