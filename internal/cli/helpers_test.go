package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warpmesh/warp/membership/membershiptest"
	"github.com/warpmesh/warp/syncbus"
)

// TestMain fails the package's tests if a goroutine outlives them (the
// HTTP API's streams, the nodes and their --bridge, the demo's caches),
// apart from memberlist's own short-lived stragglers and the goroutine
// sarama's metrics start once per process and never stop (see
// bridge/kafka's package documentation).
func TestMain(m *testing.M) {
	code := m.Run()
	// The HTTP client keeps idle connections, each with two goroutines.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if code == 0 {
		opts := append(membershiptest.LeakOptions(), goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: "+format, append([]any{timeout}, args...)...)
		}
		<-tick.C
	}
}

// runCLICtx is runCLI with a context, for commands that run until
// interrupted.
func runCLICtx(ctx context.Context, env map[string]string, stdout, stderr io.Writer, args ...string) int {
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return run(ctx, args, lookup, stdout, stderr)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// memCluster is an in-memory cluster of three nodes in zones a, b and c,
// with the HTTP API of node "a" served by an httptest server.
type memCluster struct {
	net   *syncbus.InMemoryNetwork
	nodes map[string]*syncbus.InMemoryBus
	api   *apiServer
	srv   *httptest.Server
}

func newMemCluster(t *testing.T, cfg apiConfig) *memCluster {
	t.Helper()
	c := &memCluster{net: syncbus.NewInMemoryNetwork(), nodes: map[string]*syncbus.InMemoryBus{}}
	for _, z := range []string{"a", "b", "c"} {
		b, err := c.net.Join(z, z, syncbus.WithAckTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		c.nodes[z] = b
		t.Cleanup(func() { _ = b.Close() })
	}
	if cfg.Bus == nil {
		cfg.Bus = c.nodes["a"]
	}
	c.api = newAPIServer(cfg)
	c.srv = httptest.NewServer(c.api.handler())
	t.Cleanup(c.srv.Close)
	return c
}

// post sends body to path and returns the status and the decoded JSON
// answer.
func (c *memCluster) post(t *testing.T, path, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(c.srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, decodeAnswer(t, resp)
}

func (c *memCluster) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(c.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, decodeAnswer(t, resp)
}

func decodeAnswer(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("answer is not a JSON object: %v", err)
	}
	return out
}

// strs converts a JSON array of strings.
func strs(v any) []string {
	arr, _ := v.([]any)
	out := []string{}
	for _, x := range arr {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// newTestServer serves api's handler until the test ends and returns its
// URL.
func newTestServer(t *testing.T, api *apiServer) string {
	t.Helper()
	srv := httptest.NewServer(api.handler())
	t.Cleanup(srv.Close)
	return srv.URL
}
