package bridgetest

import (
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
)

// TestWatchdog: Next hands over what comes; a benchmark that makes no
// progress for a period is declared stalled, so its waits end instead of
// hanging; the watchdog's goroutine ends with the test.
func TestWatchdog(t *testing.T) {
	warptest.LeakCheck(t)
	t.Run("stall", func(t *testing.T) {
		w := NewWatchdog(t, 10*time.Millisecond)
		ch := make(chan int, 1)
		ch <- 7
		if got := Next(t, w, ch); got != 7 {
			t.Fatalf("Next returned %d, want 7", got)
		}
		w.Progress()
		select {
		case <-w.stalled:
		case <-time.After(10 * time.Second):
			t.Fatal("no progress for 10s, and the watchdog did not call it a stall")
		}
	})
}
