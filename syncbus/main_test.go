package syncbus_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// async publisher's workers and the goroutines tests start must all stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
