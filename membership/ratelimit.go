package membership

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// tokenBucket admits burst events at once and then rate events per second.
// It is not safe for concurrent use; its owner holds a lock.
type tokenBucket struct {
	rate   float64 // tokens added per second
	burst  float64 // bucket capacity
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int) tokenBucket {
	return tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// take reports whether an event at now is admitted, spending a token if so.
func (b *tokenBucket) take(now time.Time) bool {
	if !b.last.IsZero() {
		if dt := now.Sub(b.last).Seconds(); dt > 0 {
			b.tokens += dt * b.rate
			if b.tokens > b.burst {
				b.tokens = b.burst
			}
		}
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// limitedLog writes to a slog.Logger at a bounded rate, so that a flood of
// bad input, each piece of which deserves a line, cannot flood the log. The
// lines it holds back are counted and announced by the next line it lets
// through (and by flush), so that an operator knows some were dropped.
//
// A limitedLog is safe for concurrent use.
type limitedLog struct {
	log *slog.Logger
	now func() time.Time // time.Now outside tests

	mu         sync.Mutex
	bucket     tokenBucket
	suppressed uint64 // held back since the last line written

	total atomic.Uint64 // every line held back, for Stats
}

func newLimitedLog(log *slog.Logger, rate float64, burst int) *limitedLog {
	return &limitedLog{log: log, now: time.Now, bucket: newTokenBucket(rate, burst)}
}

// Log writes msg at level unless the rate is exceeded. Lines the logger
// would discard anyway do not spend the budget.
func (l *limitedLog) Log(level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.mu.Lock()
	if !l.bucket.take(l.now()) {
		l.suppressed++
		l.mu.Unlock()
		l.total.Add(1)
		return
	}
	held := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	if held > 0 {
		l.log.Warn("membership: log lines suppressed by the rate limit", "suppressed", held)
	}
	l.log.Log(ctx, level, msg, args...)
}

// flush announces the lines held back since the last line written; it is
// called on shutdown so that the count is never lost.
func (l *limitedLog) flush() {
	l.mu.Lock()
	held := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	if held > 0 {
		l.log.Warn("membership: log lines suppressed by the rate limit", "suppressed", held)
	}
}

// Suppressed returns how many lines the rate limit has held back in all.
func (l *limitedLog) Suppressed() uint64 { return l.total.Load() }
