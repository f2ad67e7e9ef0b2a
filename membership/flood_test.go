package membership

import (
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/wire"
)

// TestFloodsDoNotMakeHealthyNodesSuspect floods one node of an encrypted
// cluster, first with data-plane datagrams nobody reads, then with garbage
// that memberlist must reject, and checks that no node ever suspects
// another, that both floods were counted, and that the flooded node's log
// stayed within its rate limit.
func TestFloodsDoNotMakeHealthyNodesSuspect(t *testing.T) {
	const (
		floodSize = 20000
		logRate   = 5
		logBurst  = 5
	)
	key := randomKey(t)
	rec := &recorder{level: slog.LevelDebug}
	start := time.Now()
	nodes := startCluster(t, "f", 3, func(i int, c *Config) {
		kr, _ := wire.NewKeyring(key)
		c.Keyring = kr
		// Timings with room for a busy test machine: the flood must be
		// what would cause a suspicion, not the scheduler.
		c.ProbeInterval, c.ProbeTimeout = 500*time.Millisecond, 250*time.Millisecond
		c.SuspicionMult = 4
		if i == 0 {
			c.Logger = slog.New(rec)
			c.LogRate, c.LogBurst = logRate, logBurst
		}
	})
	waitConverged(t, nodes, 15*time.Second)
	var logs []*eventLog
	for _, n := range nodes {
		logs = append(logs, watchEvents(n))
	}
	target := nodes[0]
	tr := target.Transport().(*NetTransport)
	raw := rawSocket(t)

	send := func(first byte) {
		b := make([]byte, 200)
		for range floodSize {
			_, _ = rand.Read(b)
			b[0] = first
			if _, err := raw.WriteToUDPAddrPort(b, tr.Addr()); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Data nobody reads: the queue fills, the rest is dropped.
	send(wire.Marker)
	warptest.Eventually(t, 10*time.Second, func() bool { return tr.Stats().DatagramsDropped > 0 },
		"data flood not dropped: %+v", tr.Stats())
	// Garbage for memberlist: any first byte but the marker (and not a
	// well-formed packet, which needs the key).
	before := tr.Stats().PacketsReceived
	send(0x01)
	warptest.Eventually(t, 10*time.Second, func() bool { return tr.Stats().PacketsReceived-before > floodSize/10 },
		"garbage did not reach memberlist: %+v", tr.Stats())

	// Watch a few more probe rounds, long enough for a suspicion that
	// started during the floods to be seen, while gossip keeps flowing on
	// the flooded node.
	after, polls := tr.Stats().PacketsReceived, target.polls.Load()
	warptest.Eventually(t, 15*time.Second, func() bool {
		return target.polls.Load() >= polls+8 && tr.Stats().PacketsReceived >= after+10
	}, "memberlist traffic stopped after the flood: %+v", tr.Stats())

	for i, l := range logs {
		if s, f := l.count(EventSuspect, ""), l.count(EventFailed, ""); s+f > 0 {
			t.Errorf("%s saw %d suspicions and %d failures during the floods", nodes[i].Name(), s, f)
		}
	}
	waitConverged(t, nodes, time.Second)

	lines := rec.count(func(r slog.Record) bool { return !isSuppressionNotice(r) })
	budget := logBurst + int(time.Since(start).Seconds()*logRate) + 1
	if lines > budget {
		t.Errorf("the flooded node wrote %d log lines in %v, over its budget of %d", lines, time.Since(start), budget)
	}
	if target.Stats().LogSuppressed < floodSize/10 {
		t.Errorf("only %d lines suppressed: were the rejections logged at all?", target.Stats().LogSuppressed)
	}
	if err := target.Close(); err != nil {
		t.Fatal(err)
	}
	if rec.count(isSuppressionNotice) == 0 {
		t.Error("no notice of the suppressed lines")
	}
}
