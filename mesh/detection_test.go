//go:build !race

package mesh_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/syncbus"
)

// TestMeasureDetection measures, under each membership profile with its
// default timings, how long after a node is SIGKILLed the others report it
// failed, and how long until an awaiting publish that needs the dead
// node's zone stops waiting and the next one fails fast. The cluster is
// this process (the publisher, zone a) and child processes on 127.0.0.1;
// the victim is alone in zone c. It takes minutes (the wan profile
// suspects a node for half a minute and more), so it runs only when asked:
//
//	WARP_MEASURE_DETECTION=1 go test -run '^TestMeasureDetection$' -v ./mesh/
//
// WARP_MEASURE_PROFILES (default "local,lan,wan"), WARP_MEASURE_RUNS
// (default 3) and WARP_MEASURE_NODES (default 3, at least 3) change what
// is measured. The figures are medians over the runs.
func TestMeasureDetection(t *testing.T) {
	if os.Getenv("WARP_MEASURE_DETECTION") != "1" {
		t.Skip("set WARP_MEASURE_DETECTION=1 to measure failure detection per profile (takes minutes)")
	}
	profiles := strings.Split(envOr("WARP_MEASURE_PROFILES", "local,lan,wan"), ",")
	runs := envInt(t, "WARP_MEASURE_RUNS", 3)
	nodes := envInt(t, "WARP_MEASURE_NODES", 3)
	if runs < 1 || nodes < 3 {
		t.Fatalf("WARP_MEASURE_RUNS=%d WARP_MEASURE_NODES=%d: want at least 1 run and 3 nodes", runs, nodes)
	}

	var rows []string
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			var ds []detection
			for r := range runs {
				t.Run(fmt.Sprintf("run%d", r), func(t *testing.T) {
					d := measureKill(t, profile, nodes, r)
					t.Logf("%s", d)
					ds = append(ds, d)
				})
			}
			if len(ds) == 0 {
				return
			}
			m := medianDetection(ds)
			row := fmt.Sprintf("| %s | %d | %d | %v | %v | %v | %v | %v |", profile, nodes, len(ds),
				round(m.suspect), round(m.failedPub), round(m.failedAll), round(m.waitEnded), round(m.failFast))
			t.Logf("medians: %s", row)
			rows = append(rows, row)
		})
	}
	t.Logf("\n| profile | nodes | runs | suspect (publisher) | failed (publisher) | failed (every survivor) | waiting call gives up | fail fast from |\n|---|---|---|---|---|---|---|---|\n%s",
		strings.Join(rows, "\n"))
}

// detection is one run's figures, each measured from the SIGKILL.
type detection struct {
	suspect   time.Duration // the publisher marks the victim suspect
	failedPub time.Duration // the publisher declares it failed
	failedAll time.Duration // the last survivor (publisher included) declares it failed
	waitEnded time.Duration // an awaiting publish started at the kill returns
	failFast  time.Duration // the next awaiting publish fails fast
}

func (d detection) String() string {
	return fmt.Sprintf("suspect %v, failed at the publisher %v, at every survivor %v; waiting call gave up %v, fail fast from %v",
		round(d.suspect), round(d.failedPub), round(d.failedAll), round(d.waitEnded), round(d.failFast))
}

// measureKill builds a fresh cluster of n nodes under profile, kills the
// victim and measures.
func measureKill(t *testing.T, profile string, n, run int) detection {
	prefix := fmt.Sprintf("%s%d", profile, run)
	pub := startProcPublisher(t, prefix+"-a", "a", profile, false)
	seed := pub.Addr().String()
	var children []*nodeProc
	for i := 1; i < n; i++ {
		zone := [2]string{"b", "a"}[(i-1)%2]
		if i == n-1 {
			zone = "c"
		}
		children = append(children, startNodeProc(t, nodeProcConfig{
			Name: fmt.Sprintf("%s-%d%s", prefix, i, zone), Zone: zone, Seed: seed, Profile: profile,
		}))
	}
	victim, survivors := children[n-2], children[:n-2]
	for _, c := range children {
		c.addr(t, 30*time.Second)
	}
	warptest.Eventually(t, time.Minute, func() bool {
		return countAlive(pub.Members()) == n
	}, "%s", fmt.Sprintf("the publisher to see %d nodes alive", n))
	for _, c := range children {
		warptest.Eventually(t, time.Minute, func() bool { return c.sawAlive(n) }, "%s", c.name+" to see every node alive")
	}

	// The publisher's view of the victim, from its membership events.
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu                  sync.Mutex
		suspectAt, failedAt time.Time
		wg                  sync.WaitGroup
	)
	wg.Go(func() {
		events := pub.Membership().Events()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-events:
				if !ok {
					return
				}
				if e.Node.Name != victim.name {
					continue
				}
				now := time.Now()
				mu.Lock()
				switch {
				case e.Kind == membership.EventSuspect && suspectAt.IsZero():
					suspectAt = now
				case e.Kind == membership.EventFailed && failedAt.IsZero():
					failedAt = now
				}
				mu.Unlock()
			}
		}
	})
	defer func() { cancel(); wg.Wait() }()

	// Kill at a random point of the failure detector's cycle: each node
	// probes its n-1 peers in turn, one per probe interval, and the
	// cluster converged a fixed time after the nodes started, so killing
	// at once would always measure the same phase of that cycle. This
	// pause spreads the kills; it synchronises nothing.
	time.Sleep(rand.N(time.Duration(n-1) * probeInterval[profile]))
	killedAt := time.Now()
	victim.kill(t)

	// An awaiting publish that needs the victim's zone waits until the
	// membership gives the victim up.
	long, cancelLong := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancelLong()
	err := pub.PublishAndAwaitTopology(long, "proc:key", 3)
	waitEnded := time.Since(killedAt)
	if !errors.Is(err, syncbus.ErrQuorumNotSatisfied) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the awaiting publish ended with %v, want ErrQuorumNotSatisfied before its deadline", err)
	}
	err = pub.PublishAndAwaitTopology(long, "proc:key", 3)
	failFast := time.Since(killedAt)
	var qe *syncbus.QuorumError
	if !errors.As(err, &qe) || !qe.FailFast {
		t.Fatalf("the next awaiting publish: %v, want a fail fast", err)
	}

	d := detection{waitEnded: waitEnded, failFast: failFast}
	warptest.Eventually(t, time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !failedAt.IsZero()
	}, "%s", "the publisher's failed event")
	mu.Lock()
	d.failedPub = failedAt.Sub(killedAt)
	if !suspectAt.IsZero() {
		d.suspect = suspectAt.Sub(killedAt)
	}
	mu.Unlock()
	d.failedAll = d.failedPub
	for _, s := range survivors {
		s.waitLine(t, 5*time.Minute, victim.name+" declared failed", func(f []string) bool {
			return len(f) == 5 && f[0] == "member" && f[1] == "Failed" && f[2] == victim.name
		})
		at, _ := s.firstMemberEvent("Failed", victim.name)
		d.failedAll = max(d.failedAll, at.Sub(killedAt))
	}
	return d
}

// probeInterval is each profile's default probe interval (memberlist's
// presets), the period of the failure detector's cycle.
var probeInterval = map[string]time.Duration{"local": time.Second, "lan": time.Second, "wan": 5 * time.Second}

// medianDetection takes the median of each figure separately.
func medianDetection(ds []detection) detection {
	med := func(get func(detection) time.Duration) time.Duration {
		v := make([]time.Duration, len(ds))
		for i, d := range ds {
			v[i] = get(d)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return detection{
		suspect:   med(func(d detection) time.Duration { return d.suspect }),
		failedPub: med(func(d detection) time.Duration { return d.failedPub }),
		failedAll: med(func(d detection) time.Duration { return d.failedAll }),
		waitEnded: med(func(d detection) time.Duration { return d.waitEnded }),
		failFast:  med(func(d detection) time.Duration { return d.failFast }),
	}
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}
