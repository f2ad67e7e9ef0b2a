package membership

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// limitedLog writes to a slog.Logger at a bounded rate, so that a flood of
// bad input, each piece of which deserves a line, cannot flood the log. The
// lines it holds back are counted and announced by the next line it lets
// through (and by flush), so that an operator knows some were dropped.
//
// A limitedLog is safe for concurrent use.
type limitedLog struct {
	log *slog.Logger
	now func() time.Time // time.Now outside tests

	lim        *rate.Limiter
	mu         sync.Mutex
	suppressed uint64 // held back since the last line written

	total atomic.Uint64 // every line held back, for Stats
}

func newLimitedLog(log *slog.Logger, perSecond float64, burst int) *limitedLog {
	return &limitedLog{log: log, now: time.Now, lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// Log writes msg at level unless the rate is exceeded. Lines the logger
// would discard anyway do not spend the budget.
func (l *limitedLog) Log(level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.mu.Lock()
	if !l.lim.AllowN(l.now(), 1) {
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
