//go:build linux && !race

package chaos

// The chaos harness: nine `warp node` processes in three zones, each in its
// own network namespace (lab_test.go), a watch stream on every node, a
// steady load of plain and awaited publishes through their HTTP APIs, and
// faults — SIGKILL and restart, a zone cut off and healed, SIGSTOP past
// failure detection and SIGCONT, every node restarted in turn. What the
// watch streams recorded is then judged by Check. The short variant runs
// in every `go test` as root (it is too heavy for the race detector, whose
// runs check the checker itself); WARP_CHAOS=long runs every fault again
// and again for about ten minutes (README.md, "Reliability").

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
)

// envChaos set to "long" runs the long variant; envMinutes sets its
// length (default 10); envRecord names a file to write the run's Record
// to, as JSON, for a closer look at a failure.
const (
	envChaos   = "WARP_CHAOS"
	envMinutes = "WARP_CHAOS_MINUTES"
	envRecord  = "WARP_CHAOS_RECORD"
)

const (
	zonesN    = 3
	perZone   = 3
	nodeCount = zonesN * perZone
	meshPort  = 7946
	apiPort   = 7947
	// convergeTimeout bounds the wait for every node to see every other
	// alive after a fault (the local profile rejoins every 15s).
	convergeTimeout = 90 * time.Second
)

// Timing of the faults. The local profile declares a silent node failed
// after about 4s (1s probes, suspicion 3 × 1s), later on a loaded
// machine: a cut or a pause lasts until a node on the other side has
// declared it failed (at most detectTimeout), and at least cutFor or
// pauseFor.
const (
	killDown      = 2 * time.Second
	cutFor        = 6 * time.Second
	pauseFor      = 6 * time.Second
	detectTimeout = 30 * time.Second
)

// checkConfig: Grace covers failure detection and the wait for members to
// merge beyond the fault's recorded end (the harness ends a fault when the
// cluster has converged again); Settle is 2s awaits plus repairs.
var checkConfig = Config{Grace: 3 * time.Second, Settle: 4 * time.Second}

// calm is the steady load between two faults: events then are owed to
// everyone once Grace has passed.
const calm = 5 * time.Second

// TestChaos: nine real nodes under load survive a SIGKILL and restart, a
// zone cut off past failure detection and healed, a node paused past
// failure detection, and a restart of every node in turn (the long
// variant: all of it, and two nodes killed at once, again and again), with
// no violation of the four invariants in what their watch streams
// recorded, and with most (event, node) pairs owed rather than excused.
func TestChaos(t *testing.T) {
	requireLab(t)
	long := os.Getenv(envChaos) == "long"
	if testing.Short() && !long {
		t.Skip("SKIP: the chaos harness takes two minutes; not with -short")
	}
	h := newHarness(t)
	t0 := time.Now()
	h.startAll()
	h.waitConverged("start")
	h.startLoad()
	h.hold(4 * time.Second)

	if long {
		minutes := 10
		if m, err := strconv.Atoi(os.Getenv(envMinutes)); err == nil && m > 0 {
			minutes = m
		}
		deadline := t0.Add(time.Duration(minutes) * time.Minute)
		for cycle := 1; time.Now().Before(deadline); cycle++ {
			t.Logf("cycle %d at %v", cycle, time.Since(t0).Round(time.Second))
			h.kill(h.rng.IntN(nodeCount))
			h.hold(calm)
			h.cut(h.rng.IntN(zonesN))
			h.hold(calm)
			h.pause(h.rng.IntN(nodeCount))
			h.hold(calm)
			// Two nodes of two zones at once.
			a := h.rng.IntN(nodeCount)
			h.killTogether(a, (a+perZone+h.rng.IntN(perZone))%nodeCount)
			h.hold(calm)
			h.restartAll()
			h.hold(calm)
		}
	} else {
		h.kill(0)
		h.hold(calm)
		h.cut(2)
		h.hold(calm)
		h.pause(4)
		h.hold(calm)
		h.restartAll()
	}
	h.hold(calm)
	h.stopLoad()

	res := h.settle()
	if path := os.Getenv(envRecord); path != "" {
		data, err := json.Marshal(h.snapshot())
		if err == nil {
			err = os.WriteFile(path, data, 0o644)
		}
		if err != nil {
			t.Errorf("writing the record: %v", err)
		}
	}
	var b bytes.Buffer
	_ = res.WriteTable(&b)
	t.Logf("chaos run of %v (%d nodes, %d zones):\n%s", time.Since(t0).Round(time.Second), nodeCount, zonesN, b.String())
	if h.streamBreaks.Load() > 0 {
		t.Errorf("%d watch streams ended while their node was running", h.streamBreaks.Load())
	}
	if err := res.Err(); err != nil {
		t.Fatalf("%v%s", err, h.logs())
	}
	if res.AwaitedOK == 0 || res.Reached == 0 {
		t.Fatalf("the load did not run: %d awaited successes, %d deliveries reached", res.AwaitedOK, res.Reached)
	}
	// The calm between faults owes most events to every node: a run whose
	// faults excused nearly everything would prove little.
	if pairs := res.Owed + res.Excused; res.Owed*3 < pairs {
		t.Errorf("only %d of %d (event, node) pairs were owed: the faults excused too much", res.Owed, pairs)
	}
}

// Node states, as the harness drives them.
const (
	down = iota
	up
	paused
)

// proc is one node's process across its restarts.
type proc struct {
	i              int
	name, zone, ns string

	mu       sync.Mutex
	cmd      *exec.Cmd
	state    int
	expected bool          // the harness is stopping it: its exit is no crash
	exited   chan struct{} // closed when the current process exits
	log      *tail
	watching bool
}

// tail keeps the end of a process's output.
type tail struct {
	mu sync.Mutex
	b  []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if over := len(w.b) - 16<<10; over > 0 {
		w.b = append(w.b[:0], w.b[over:]...)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

type harness struct {
	t       *testing.T
	lab     *lab
	bin     string
	keyFile string
	procs   []*proc
	rng     *mrand.Rand // the test goroutine's own

	ctx    context.Context
	cancel context.CancelFunc
	load   context.CancelFunc
	wg     sync.WaitGroup // watchers, sampler
	loadWG sync.WaitGroup // publishers
	client *http.Client

	mu           sync.Mutex
	rec          Record
	seq          int
	streamBreaks atomic.Int64
}

func newHarness(t *testing.T) *harness {
	l := newLab(t, nodeCount)
	dir := t.TempDir()
	h := &harness{t: t, lab: l, bin: filepath.Join(dir, "warp"), keyFile: filepath.Join(dir, "keys")}
	build := exec.Command(goTool(), "build", "-o", h.bin, "github.com/warpmesh/warp/cmd/warp")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building warp: %v\n%s", err, out)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(h.keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	h.rng = mrand.New(mrand.NewPCG(seed, 1))
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
	}}
	for i := range nodeCount {
		z := fmt.Sprintf("z%d", i/perZone)
		p := &proc{i: i, name: fmt.Sprintf("n%d", i), zone: z, ns: l.nodes[i], exited: make(chan struct{}), log: &tail{}}
		close(p.exited)
		h.procs = append(h.procs, p)
		h.rec.Nodes = append(h.rec.Nodes, Node{Name: p.name, Zone: p.zone})
	}
	// Cleanups run last first: the nodes stop before the lab goes.
	t.Cleanup(func() {
		h.cancel()
		h.loadWG.Wait()
		for _, p := range h.procs {
			h.stop(p, syscall.SIGTERM)
		}
		h.wg.Wait()
		h.client.CloseIdleConnections()
	})
	return h
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

func (h *harness) url(i int, path string) string {
	return fmt.Sprintf("http://%s:%d%s", mgmtIP(i), apiPort, path)
}

// start starts node p's process.
func (h *harness) start(p *proc) {
	var seeds []string
	for z := range zonesN {
		seeds = append(seeds, fmt.Sprintf("%s:%d", dataIP(z*perZone), meshPort))
	}
	cmd := exec.Command("ip", "netns", "exec", p.ns, h.bin, "node",
		"--name", p.name, "--zone", p.zone, "--region", "lab", "--label", "chaos",
		"--bind", dataIP(p.i), "--port", strconv.Itoa(meshPort),
		"--seeds", strings.Join(seeds, ","), "--key-file", h.keyFile,
		"--http", fmt.Sprintf("0.0.0.0:%d", apiPort), "--profile", "local",
		"--log-level", "warn")
	cmd.Stdout, cmd.Stderr = p.log, p.log
	exited := make(chan struct{})
	if err := cmd.Start(); err != nil {
		h.t.Fatalf("starting %s: %v", p.name, err)
	}
	p.mu.Lock()
	p.cmd, p.state, p.expected, p.exited = cmd, up, false, exited
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		expected := p.expected
		p.state = down
		p.mu.Unlock()
		if !expected {
			h.mu.Lock()
			h.rec.Exits = append(h.rec.Exits, Exit{Node: p.name, At: time.Now(), Detail: fmt.Sprintf("%v\n%s", err, p.log)})
			h.mu.Unlock()
		}
		close(exited)
	}()
}

func (h *harness) startAll() {
	for _, p := range h.procs {
		h.start(p)
	}
	for _, p := range h.procs {
		h.wg.Add(1)
		go h.watch(p)
	}
	h.wg.Add(1)
	go h.sample()
}

// stop signals p's process and waits for it to exit; SIGTERM must end it
// cleanly (status 0), SIGKILL ends it at once.
func (h *harness) stop(p *proc, sig syscall.Signal) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	running := p.state != down
	if running {
		p.expected = true
	}
	p.mu.Unlock()
	if !running {
		<-exited
		return
	}
	if sig == syscall.SIGTERM {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a paused node must run to leave
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		h.recordExit(p, "did not exit within 30s of "+sig.String())
		return
	}
	if sig == syscall.SIGTERM && cmd.ProcessState.ExitCode() != 0 {
		h.recordExit(p, fmt.Sprintf("exited with status %d after SIGTERM", cmd.ProcessState.ExitCode()))
	}
}

func (h *harness) recordExit(p *proc, detail string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rec.Exits = append(h.rec.Exits, Exit{Node: p.name, At: time.Now(), Detail: detail + "\n" + p.log.String()})
}

// watch keeps a watch stream open on p while it runs, recording each
// stream as a Stream, until the run ends.
func (h *harness) watch(p *proc) {
	defer h.wg.Done()
	client := &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: time.Second}).DialContext,
		ResponseHeaderTimeout: 2 * time.Second,
		DisableKeepAlives:     true,
	}}
	defer client.CloseIdleConnections()
	retry := time.NewTicker(100 * time.Millisecond)
	defer retry.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-retry.C:
		}
		p.mu.Lock()
		st := p.state
		p.mu.Unlock()
		if st != up {
			continue
		}
		h.stream(p, client)
	}
}

// stream runs one watch stream on p until it ends.
func (h *harness) stream(p *proc, client *http.Client) {
	req, err := http.NewRequestWithContext(h.ctx, http.MethodGet, h.url(p.i, "/v1/watch?all"), nil)
	if err != nil {
		h.t.Errorf("watch request: %v", err)
		return
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := client.Do(req)
	if err != nil {
		return // not listening yet, or paused: try again
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return
	}
	h.mu.Lock()
	idx := len(h.rec.Streams)
	h.rec.Streams = append(h.rec.Streams, Stream{Node: p.name, Opened: time.Now()})
	h.mu.Unlock()
	p.mu.Lock()
	p.watching = true
	p.mu.Unlock()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev struct{ ID, Op, Key, Origin string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			h.t.Errorf("%s: a watch line that is not JSON: %q", p.name, sc.Text())
			continue
		}
		now := time.Now()
		h.mu.Lock()
		s := &h.rec.Streams[idx]
		s.Events = append(s.Events, Delivery{At: now, ID: ev.ID, Key: ev.Key, Op: ev.Op, Origin: ev.Origin})
		h.mu.Unlock()
	}
	now := time.Now()
	h.mu.Lock()
	h.rec.Streams[idx].Closed = now
	h.mu.Unlock()
	p.mu.Lock()
	p.watching = false
	broke := p.state == up && !p.expected && h.ctx.Err() == nil
	p.mu.Unlock()
	if broke {
		// A stream of a running node should never end: the harness
		// counts it (the checker owes nothing across the gap).
		select {
		case <-p.exited:
		case <-time.After(time.Second):
			p.mu.Lock()
			broke = p.state == up
			p.mu.Unlock()
			if broke {
				h.streamBreaks.Add(1)
				h.t.Logf("%s: the watch stream ended while the node ran: %v", p.name, sc.Err())
			}
		}
	}
}

// sample reads every running node's goroutines and memory every 2s.
func (h *harness) sample() {
	defer h.wg.Done()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tick.C:
		}
		for _, p := range h.procs {
			p.mu.Lock()
			st := p.state
			p.mu.Unlock()
			if st != up {
				continue
			}
			if s, ok := h.readMetrics(p); ok {
				h.mu.Lock()
				h.rec.Samples = append(h.rec.Samples, s)
				h.mu.Unlock()
			}
		}
	}
}

// readMetrics reads go_goroutines and process_resident_memory_bytes from
// p's /metrics.
func (h *harness) readMetrics(p *proc) (Sample, bool) {
	ctx, cancel := context.WithTimeout(h.ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url(p.i, "/metrics"), nil)
	resp, err := h.client.Do(req)
	if err != nil {
		return Sample{}, false
	}
	defer resp.Body.Close()
	s := Sample{Node: p.name, At: time.Now()}
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			s.Goroutines = int(v)
			found++
		case "process_resident_memory_bytes":
			s.MemoryBytes = uint64(v)
			found++
		}
	}
	if found != 2 {
		h.t.Errorf("%s: /metrics lacks go_goroutines or process_resident_memory_bytes", p.name)
		return Sample{}, false
	}
	return s, true
}

// startLoad starts the publishers: two loops, each publishing every 50ms
// through a random running node — three in five plain, one in five
// awaiting 2 or 4 replicas, one in five awaiting 2 or 3 zones.
func (h *harness) startLoad() {
	ctx, cancel := context.WithCancel(h.ctx)
	h.load = cancel
	for w := range 2 {
		rng := mrand.New(mrand.NewPCG(h.rng.Uint64(), uint64(w)))
		h.loadWG.Add(1)
		go func() {
			defer h.loadWG.Done()
			tick := time.NewTicker(50 * time.Millisecond) // the load's pace
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				h.publishOne(ctx, rng)
			}
		}()
	}
}

func (h *harness) stopLoad() {
	h.load()
	h.loadWG.Wait()
}

func (h *harness) publishOne(ctx context.Context, rng *mrand.Rand) {
	var running []*proc
	for _, p := range h.procs {
		p.mu.Lock()
		if p.state == up {
			running = append(running, p)
		}
		p.mu.Unlock()
	}
	if len(running) == 0 {
		return
	}
	p := running[rng.IntN(len(running))]
	h.mu.Lock()
	h.seq++
	key := fmt.Sprintf("chaos/%d", h.seq)
	h.mu.Unlock()
	pub := Publish{Node: p.name, Key: key, Kind: Plain}
	body := map[string]any{"key": key}
	switch r := rng.IntN(5); {
	case r == 3:
		pub.Kind, pub.Asked = Replicas, 2+2*rng.IntN(2)
		body["replicas"], body["timeout"] = pub.Asked, "2s"
	case r == 4:
		pub.Kind, pub.Asked = Zones, 2+rng.IntN(2)
		body["zones"], body["timeout"] = pub.Asked, "2s"
	}
	data, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.url(p.i, "/v1/publish"), bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	pub.Start = time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return // the load stopped: nobody judges this one
		}
		pub.End, pub.Err = time.Now(), ReasonUnreachable
		h.addPublish(pub)
		return
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	pub.End = time.Now()
	if err != nil {
		pub.Err = ReasonUnreachable
		h.addPublish(pub)
		return
	}
	var out struct {
		Code     string `json:"code"`
		FailFast bool   `json:"fail_fast"`
		Results  []struct {
			AckedNodes []string `json:"acked_nodes"`
			AckedZones []string `json:"acked_zones"`
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Errorf("publish on %s: status %d, body %q: %v", p.name, resp.StatusCode, raw, err)
		return
	}
	switch {
	case resp.StatusCode == http.StatusOK && len(out.Results) == 1:
		pub.AckedNodes, pub.AckedZones = out.Results[0].AckedNodes, out.Results[0].AckedZones
	case out.Code == "quorum_not_satisfied" && out.FailFast:
		pub.Err = ReasonFailFast
	case out.Code == "quorum_not_satisfied", out.Code == "deadline_exceeded":
		pub.Err = ReasonDeadline // sent, not acknowledged enough
	case out.Code == "backpressure":
		pub.Err = ReasonBackpressure
	case out.Code == "closed":
		pub.Err = ReasonClosed
	default:
		pub.Err = ReasonOther
		h.t.Logf("publish on %s: status %d, body %s", p.name, resp.StatusCode, bytes.TrimSpace(raw))
	}
	h.addPublish(pub)
}

func (h *harness) addPublish(p Publish) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rec.Publishes = append(h.rec.Publishes, p)
}

// hold lets the load run for d.
func (h *harness) hold(d time.Duration) {
	select {
	case <-time.After(d): // the scenario's clock, not synchronisation
	case <-h.ctx.Done():
	}
}

// converged reports whether every node runs, watches, and sees all nine
// alive.
func (h *harness) converged() bool {
	for _, p := range h.procs {
		p.mu.Lock()
		ok := p.state == up && p.watching
		p.mu.Unlock()
		if !ok {
			return false
		}
		alive := 0
		for _, x := range h.members(p.i) {
			if x.State == "alive" {
				alive++
			}
		}
		if alive != nodeCount {
			return false
		}
	}
	return true
}

func (h *harness) waitConverged(after string) time.Time {
	h.t.Helper()
	t0 := time.Now()
	warptest.Eventually(h.t, convergeTimeout, throttle(100*time.Millisecond, h.converged), "the cluster did not converge after %s:%s", after, h.logs)
	h.t.Logf("converged %v after %s", time.Since(t0).Round(10*time.Millisecond), after)
	return time.Now()
}

func (h *harness) addFault(f Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rec.Faults = append(h.rec.Faults, f)
}

// kill SIGKILLs node i, restarts it under the same name after killDown,
// and waits for the cluster to converge.
func (h *harness) kill(i int) { h.killTogether(i) }

// killTogether kills the nodes at once, then restarts them.
func (h *harness) killTogether(idx ...int) {
	idx = slices.Compact(slices.Sorted(slices.Values(idx)))
	f := Fault{Kind: Kill, From: time.Now()}
	for _, i := range idx {
		f.Nodes = append(f.Nodes, h.procs[i].name)
		h.stop(h.procs[i], syscall.SIGKILL)
	}
	h.hold(killDown)
	for _, i := range idx {
		h.start(h.procs[i])
	}
	f.To = h.waitConverged(fmt.Sprintf("killing and restarting %v", f.Nodes))
	h.addFault(f)
}

// cut takes the data links of zone z down past failure detection (see
// holdUntilFailed), and heals them.
func (h *harness) cut(z int) {
	f := Fault{Kind: Cut, From: time.Now()}
	for i := z * perZone; i < (z+1)*perZone; i++ {
		f.Nodes = append(f.Nodes, h.procs[i].name)
		h.lab.setData(i, false)
	}
	h.holdUntilFailed(cutFor, (z+1)%zonesN*perZone, z*perZone, "cut off")
	for i := z * perZone; i < (z+1)*perZone; i++ {
		h.lab.setData(i, true)
	}
	f.To = h.waitConverged(fmt.Sprintf("cutting zone z%d off", z))
	h.addFault(f)
}

// holdUntilFailed holds a fault until node observer has declared node
// target failed — the fault outlasts failure detection, however slow the
// machine — and for at least d; it fails the test if the declaration does
// not come within detectTimeout.
func (h *harness) holdUntilFailed(d time.Duration, observer, target int, what string) {
	h.t.Helper()
	t0 := time.Now()
	name := h.procs[target].name
	failed := warptest.WaitFor(detectTimeout, throttle(50*time.Millisecond, func() bool { return h.memberState(observer, name) == "failed" }))
	if !failed {
		h.t.Errorf("%s was never declared failed by %s while %s for %v", name, h.procs[observer].name, what, detectTimeout)
	} else {
		h.t.Logf("%s declared %s failed %v after it was %s", h.procs[observer].name, name, time.Since(t0).Round(10*time.Millisecond), what)
	}
	h.hold(time.Until(t0.Add(d)))
}

// memberState returns the state node i gives member name ("" if unknown
// or unreachable).
func (h *harness) memberState(i int, name string) string {
	for _, m := range h.members(i) {
		if m.Name == name {
			return m.State
		}
	}
	return ""
}

type member struct{ Name, State string }

// members returns node i's /v1/members (nil if unreachable).
func (h *harness) members(i int) []member {
	ctx, cancel := context.WithTimeout(h.ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url(i, "/v1/members"), nil)
	resp, err := h.client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m struct{ Members []member }
	if json.NewDecoder(resp.Body).Decode(&m) != nil {
		return nil
	}
	return m.Members
}

// pause stops node i with SIGSTOP past failure detection, then continues
// it.
func (h *harness) pause(i int) {
	p := h.procs[i]
	f := Fault{Kind: Pause, Nodes: []string{p.name}, From: time.Now()}
	p.mu.Lock()
	p.state = paused
	cmd := p.cmd
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGSTOP)
	h.holdUntilFailed(pauseFor, (i+perZone)%nodeCount, i, "paused")
	_ = cmd.Process.Signal(syscall.SIGCONT)
	p.mu.Lock()
	if p.state == paused {
		p.state = up
	}
	p.mu.Unlock()
	f.To = h.waitConverged("pausing " + p.name)
	h.addFault(f)
}

// restartAll restarts every node in turn, gracefully, each once the
// cluster has converged after the previous one.
func (h *harness) restartAll() {
	for _, p := range h.procs {
		f := Fault{Kind: Restart, Nodes: []string{p.name}, From: time.Now()}
		h.stop(p, syscall.SIGTERM)
		h.start(p)
		f.To = h.waitConverged("restarting " + p.name)
		h.addFault(f)
	}
}

// snapshot copies the record (the watchers keep appending).
func (h *harness) snapshot() *Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rec
	r.Streams = slices.Clone(r.Streams)
	r.Publishes = slices.Clone(r.Publishes)
	r.Faults = slices.Clone(r.Faults)
	r.Exits = slices.Clone(r.Exits)
	r.Samples = slices.Clone(r.Samples)
	return &r
}

// settle waits until no owed event is missing, at most the settle time
// and a little more, and returns the final judgement.
func (h *harness) settle() *Result {
	lossFree := func() bool {
		res := Check(h.snapshot(), checkConfig)
		return res.Summary.Violations[SilentLoss] == 0 && res.Summary.Violations[FalseAck] == 0
	}
	warptest.WaitFor(checkConfig.Settle+5*time.Second, throttle(250*time.Millisecond, lossFree))
	return Check(h.snapshot(), checkConfig)
}

// throttle evaluates cond at most once every d (false in between), so
// that a wait on HTTP requests or on a whole check does not poll at the
// wait helper's pace.
func throttle(d time.Duration, cond func() bool) func() bool {
	var last time.Time
	return func() bool {
		if time.Since(last) < d {
			return false
		}
		last = time.Now()
		return cond()
	}
}

// logs returns every node's recent output, for failure messages.
func (h *harness) logs() string {
	var b strings.Builder
	for _, p := range h.procs {
		fmt.Fprintf(&b, "\n--- %s (%s) log tail:\n%s", p.name, p.zone, lastLines(p.log.String(), 30))
	}
	return b.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
