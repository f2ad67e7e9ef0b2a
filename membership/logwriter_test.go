package membership

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a slog.Handler that keeps every record it is given.
type recorder struct {
	level slog.Level
	mu    sync.Mutex
	recs  []slog.Record
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// count returns how many records satisfy keep.
func (r *recorder) count(keep func(slog.Record) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.recs {
		if keep(rec) {
			n++
		}
	}
	return n
}

func isSuppressionNotice(rec slog.Record) bool { return strings.Contains(rec.Message, "suppressed") }

// suppressedIn sums the counts the suppression notices announced.
func (r *recorder) suppressedIn() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n uint64
	for _, rec := range r.recs {
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "suppressed" {
				n += a.Value.Uint64()
			}
			return true
		})
	}
	return n
}

func TestParseMemberlistLine(t *testing.T) {
	for in, want := range map[string]struct {
		level slog.Level
		msg   string
	}{
		"[DEBUG] memberlist: Stream connection from=x\n":  {slog.LevelDebug, "memberlist: Stream connection from=x"},
		"[INFO] memberlist: Suspect n1 has failed\n":      {slog.LevelInfo, "memberlist: Suspect n1 has failed"},
		"[WARN] memberlist: Refuting a suspect message\n": {slog.LevelWarn, "memberlist: Refuting a suspect message"},
		"[ERR] memberlist: Decrypt packet failed\n":       {slog.LevelError, "memberlist: Decrypt packet failed"},
		"[ERROR] something\r\n":                           {slog.LevelError, "something"},
		"no level here\n":                                 {slog.LevelInfo, "no level here"},
		"[SHOUT] odd\n":                                   {slog.LevelInfo, "[SHOUT] odd"},
		"":                                                {slog.LevelInfo, ""},
	} {
		level, msg := parseMemberlistLine([]byte(in))
		if level != want.level || msg != want.msg {
			t.Errorf("%q: %v %q, want %v %q", in, level, msg, want.level, want.msg)
		}
	}
}

func TestLimitedLog(t *testing.T) {
	rec := &recorder{level: slog.LevelInfo}
	l := newLimitedLog(slog.New(rec), 2, 3) // 2 lines/s after a burst of 3
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }

	// memberlist writes through the standard logger.
	std := log.New(mlLogWriter{out: l}, "", 0)
	for i := range 100 {
		std.Printf("[ERR] memberlist: bad packet %d", i)
	}
	if got := rec.count(func(slog.Record) bool { return true }); got != 3 {
		t.Fatalf("wrote %d lines of a burst of 100, want 3", got)
	}
	if l.Suppressed() != 97 {
		t.Errorf("suppressed %d, want 97", l.Suppressed())
	}
	// Lines below the logger's level do not spend the budget.
	for range 10 {
		std.Printf("[DEBUG] memberlist: chatter")
	}
	if l.Suppressed() != 97 {
		t.Errorf("debug lines were counted: %d", l.Suppressed())
	}

	// A second later two more lines pass; the first says what was held.
	now = now.Add(time.Second)
	for i := range 5 {
		std.Printf("[WARN] memberlist: later %d", i)
	}
	if got := rec.count(isSuppressionNotice); got != 1 || rec.suppressedIn() != 97 {
		t.Errorf("%d notices announcing %d, want 1 announcing 97", got, rec.suppressedIn())
	}
	if got := rec.count(func(r slog.Record) bool { return !isSuppressionNotice(r) }); got != 5 {
		t.Errorf("wrote %d lines, want 3+2", got)
	}
	l.flush()
	if got := rec.suppressedIn(); got != 100 {
		t.Errorf("after flush the notices announce %d, want 100", got)
	}
	l.flush() // nothing more to announce
	if got := rec.count(isSuppressionNotice); got != 2 {
		t.Errorf("%d notices, want 2", got)
	}
}
