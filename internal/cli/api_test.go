package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/input"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

func TestPublishEndpoint(t *testing.T) {
	c := newMemCluster(t, apiConfig{})
	ctx := context.Background()
	watchB, err := c.nodes["b"].SubscribePrefix(ctx, "user:")
	if err != nil {
		t.Fatal(err)
	}

	status, ans := c.post(t, "/v1/publish", `{"keys":["user:1","user:2"]}`)
	if status != http.StatusOK || ans["mode"] != "none" || len(ans["results"].([]any)) != 2 {
		t.Fatalf("plain publish: %d %v", status, ans)
	}
	for _, want := range []string{"user:1", "user:2"} {
		if ev := <-watchB; ev.Key != want || ev.Origin != "a" {
			t.Fatalf("node b got %+v, want %s from a", ev, want)
		}
	}

	status, ans = c.post(t, "/v1/publish", `{"keys":["user:3","user:4"],"zones":3}`)
	if status != http.StatusOK || ans["mode"] != "zones" || ans["required"] != 3.0 {
		t.Fatalf("zones: %d %v", status, ans)
	}
	for _, r := range ans["results"].([]any) {
		res := r.(map[string]any)
		if got := strs(res["acked_zones"]); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Errorf("%v: acked zones %v", res["key"], got)
		}
		if res["latency_ms"].(float64) < 0 || res["latency"] == "" {
			t.Errorf("no latency in %v", res)
		}
	}

	status, ans = c.post(t, "/v1/publish", `{"key":"user:5","replicas":2}`)
	res := ans["results"].([]any)[0].(map[string]any)
	if status != http.StatusOK || !slices.Equal(strs(res["acked_nodes"]), []string{"b", "c"}) {
		t.Fatalf("replicas: %d %v", status, ans)
	}

	// Every zone has one node: a zone quorum of 2 is met by all its nodes.
	if status, ans = c.post(t, "/v1/publish", `{"key":"user:6","zones":3,"zone_quorum":2}`); status != http.StatusOK || ans["zone_quorum"] != 2.0 {
		t.Fatalf("zone quorum: %d %v", status, ans)
	}

	// More zones than there are: refused at once with the figures.
	status, ans = c.post(t, "/v1/publish", `{"key":"user:7","zones":4}`)
	if status != http.StatusServiceUnavailable || ans["code"] != "quorum_not_satisfied" || ans["fail_fast"] != true ||
		ans["required"] != 4.0 || ans["available"] != 3.0 || ans["key"] != "user:7" || ans["mode"] != "zones" {
		t.Fatalf("impossible zones: %d %v", status, ans)
	}
	if !strings.Contains(ans["error"].(string), "quorum not satisfied") {
		t.Errorf("error %q", ans["error"])
	}
}

func TestPublishTimeoutsAndLostZones(t *testing.T) {
	c := newMemCluster(t, apiConfig{})
	c.nodes["c"].SetAcking(false)

	status, ans := c.post(t, "/v1/publish", `{"key":"user:1","replicas":2,"timeout":"50ms"}`)
	if status != http.StatusGatewayTimeout || ans["code"] != "deadline_exceeded" || ans["fail_fast"] != false ||
		!slices.Equal(strs(ans["acked_nodes"]), []string{"b"}) || ans["required"] != 2.0 {
		t.Fatalf("replicas past the deadline: %d %v", status, ans)
	}
	status, ans = c.post(t, "/v1/publish", `{"key":"user:1","zones":3,"timeout":"50ms"}`)
	if status != http.StatusGatewayTimeout || !slices.Equal(strs(ans["acked_zones"]), []string{"a", "b"}) ||
		!slices.Equal(strs(ans["missing_zones"]), []string{"c"}) {
		t.Fatalf("zones past the deadline: %d %v", status, ans)
	}
	// Fewer zones are still satisfied.
	if status, ans = c.post(t, "/v1/publish", `{"key":"user:1","zones":2,"timeout":"5s"}`); status != http.StatusOK {
		t.Fatalf("two zones: %d %v", status, ans)
	}

	// Zone c leaves: asking for it fails fast and names it.
	if err := c.nodes["c"].Close(); err != nil {
		t.Fatal(err)
	}
	status, ans = c.post(t, "/v1/publish", `{"key":"user:1","zones":3}`)
	if status != http.StatusServiceUnavailable || ans["fail_fast"] != true || ans["available"] != 2.0 ||
		!slices.Equal(strs(ans["missing_zones"]), []string{"c"}) {
		t.Fatalf("lost zone: %d %v", status, ans)
	}

	// The node's own bus closed: 503, not a crash.
	if err := c.nodes["a"].Close(); err != nil {
		t.Fatal(err)
	}
	if status, ans = c.post(t, "/v1/publish", `{"key":"user:1"}`); status != http.StatusServiceUnavailable || ans["code"] != "closed" {
		t.Fatalf("closed bus: %d %v", status, ans)
	}
}

func TestPublishRefusesBadBodies(t *testing.T) {
	c := newMemCluster(t, apiConfig{})
	long := strings.Repeat("k", wire.MaxKeyLen+1)
	many := `{"keys":[` + strings.TrimSuffix(strings.Repeat(`"k",`, input.MaxPublishKeys+1), ",") + `]}`
	for _, tc := range []struct{ body, field string }{
		{``, "body"},
		{`[]`, "body"},
		{`{"keys":["a"]`, "body"},
		{`{"keys":["a"]} {}`, "body"},
		{`{"keys":[]}`, "keys"},
		{`{}`, "keys"},
		{`{"keys":"a"}`, "keys"},
		{`{"keys":[1]}`, "keys"},
		{`{"keys":[""]}`, "keys[0]"},
		{`{"keys":["a","` + long + `"]}`, "keys[1]"},
		{many, "keys"},
		{`{"key":"a","keys":["b"]}`, "key"},
		{`{"keys":["a"],"replicas":0}`, "replicas"},
		{`{"keys":["a"],"replicas":-1}`, "replicas"},
		{`{"keys":["a"],"replicas":1e99}`, "replicas"},
		{`{"keys":["a"],"replicas":"2"}`, "replicas"},
		{`{"keys":["a"],"zones":0}`, "zones"},
		{`{"keys":["a"],"replicas":1,"zones":1}`, "replicas"},
		{`{"keys":["a"],"zone_quorum":2}`, "zone_quorum"},
		{`{"keys":["a"],"zones":2,"zone_quorum":0}`, "zone_quorum"},
		{`{"keys":["a"],"timeout":"soon"}`, "timeout"},
		{`{"keys":["a"],"timeout":"-1s"}`, "timeout"},
		{`{"keys":["a"],"timeout":"1h"}`, "timeout"},
		{`{"keys":["a"],"scope":"galaxy"}`, "scope"},
		{`{"keys":["a"],"replica":2}`, "replica"},
	} {
		status, ans := c.post(t, "/v1/publish", tc.body)
		if status != http.StatusBadRequest || ans["field"] != tc.field || ans["code"] != "bad_request" {
			t.Errorf("%.60q: %d %v, want 400 naming %q", tc.body, status, ans, tc.field)
		}
	}
	if m := c.nodes["a"].Metrics(); m.Published != 0 {
		t.Errorf("a refused request published %d events", m.Published)
	}
}

func TestOversizeBodiesAre413(t *testing.T) {
	c := newMemCluster(t, apiConfig{})
	big := `{"keys":["` + strings.Repeat("k", input.MaxBodyBytes) + `"]}`
	for _, path := range []string{"/v1/publish", "/v1/revoke"} {
		// Declared length over the limit.
		if status, ans := c.post(t, path, big); status != http.StatusRequestEntityTooLarge || ans["field"] != "body" {
			t.Errorf("%s: %d %v, want 413", path, status, ans)
		}
		// Chunked, with no declared length: cut at the limit.
		req, _ := http.NewRequest(http.MethodPost, c.srv.URL+path, struct{ *strings.Reader }{strings.NewReader(big)})
		req.ContentLength = -1
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		ans := decodeAnswer(t, resp)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || ans["code"] != "too_large" {
			t.Errorf("%s chunked: %d %v, want 413", path, resp.StatusCode, ans)
		}
	}
}

func TestWrongMethodAndUnknownPath(t *testing.T) {
	c := newMemCluster(t, apiConfig{})
	resp, err := http.Get(c.srv.URL + "/v1/publish")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/publish: %d", resp.StatusCode)
	}
	if status, ans := c.get(t, "/v2/nothing"); status != http.StatusNotFound || ans["code"] != "not_found" {
		t.Errorf("unknown path: %d %v", status, ans)
	}
}

func TestRevokeEndpoint(t *testing.T) {
	c := newMemCluster(t, apiConfig{})
	leases, err := c.nodes["c"].SubscribeLease(context.Background(), "lease-7")
	if err != nil {
		t.Fatal(err)
	}
	status, ans := c.post(t, "/v1/revoke", `{"lease":"lease-7"}`)
	if status != http.StatusOK || ans["lease"] != "lease-7" {
		t.Fatalf("%d %v", status, ans)
	}
	if ev := <-leases; ev.Op != syncbus.OpLeaseRevoke || ev.Key != "lease-7" {
		t.Fatalf("node c got %+v", ev)
	}
	for _, body := range []string{`{}`, `{"lease":""}`, `{"lease":7}`, `{"lease":"x","extra":1}`} {
		if status, ans := c.post(t, "/v1/revoke", body); status != http.StatusBadRequest || ans["field"] == nil {
			t.Errorf("%s: %d %v", body, status, ans)
		}
	}
}

func TestMembersHealthAndReadiness(t *testing.T) {
	c := newMemCluster(t, apiConfig{ExpectMembers: 3})
	status, ans := c.get(t, "/v1/members")
	if status != http.StatusOK || ans["self"] != "a" {
		t.Fatalf("%d %v", status, ans)
	}
	members := ans["members"].([]any)
	if len(members) != 3 {
		t.Fatalf("members %v", members)
	}
	for i, z := range []string{"a", "b", "c"} {
		m := members[i].(map[string]any)
		if m["name"] != z || m["zone"] != z || m["state"] != "alive" {
			t.Errorf("member %d: %v", i, m)
		}
	}
	if status, ans := c.get(t, "/healthz"); status != http.StatusOK || ans["status"] != "ok" {
		t.Errorf("healthz: %d %v", status, ans)
	}
	if status, ans := c.get(t, "/readyz"); status != http.StatusOK || ans["ready"] != true || ans["alive"] != 3.0 || ans["zones"] != 3.0 {
		t.Errorf("readyz: %d %v", status, ans)
	}

	// Node c leaves: listed as left, and the node is no longer ready.
	if err := c.nodes["c"].Close(); err != nil {
		t.Fatal(err)
	}
	_, ans = c.get(t, "/v1/members")
	if m := ans["members"].([]any)[2].(map[string]any); m["name"] != "c" || m["state"] != "left" {
		t.Errorf("after leaving: %v", m)
	}
	if status, ans := c.get(t, "/readyz"); status != http.StatusServiceUnavailable || ans["ready"] != false || ans["expected"] != 3.0 {
		t.Errorf("readyz with a member missing: %d %v", status, ans)
	}
	if status, _ := c.get(t, "/healthz"); status != http.StatusOK {
		t.Errorf("healthz: %d", status)
	}
}

// streamBus is an in-memory node whose prefix subscriptions are channels
// the test feeds, to put resyncs into a watch stream at will.
type streamBus struct {
	*syncbus.InMemoryBus
	ch     chan syncbus.Event
	subCtx atomic.Pointer[context.Context]
}

func (b *streamBus) SubscribePrefix(ctx context.Context, _ string) (<-chan syncbus.Event, error) {
	b.subCtx.Store(&ctx)
	return b.ch, nil
}

// openWatch starts a watch stream and returns its lines.
func openWatch(t *testing.T, ctx context.Context, url string, ndjson bool) (*http.Response, *bufio.Scanner) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if ndjson {
		req.Header.Set("Accept", "application/x-ndjson")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	return resp, bufio.NewScanner(resp.Body)
}

func TestWatchServerSentEvents(t *testing.T) {
	c := newMemCluster(t, apiConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, sc := openWatch(t, ctx, c.srv.URL+"/v1/watch?prefix=user:", false)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	if err := c.nodes["b"].Publish(ctx, "user:9", syncbus.WithScope(syncbus.ScopeGlobal)); err != nil {
		t.Fatal(err)
	}
	if err := c.nodes["b"].Publish(ctx, "order:1"); err != nil { // not watched
		t.Fatal(err)
	}
	if err := c.nodes["c"].Publish(ctx, "user:10"); err != nil {
		t.Fatal(err)
	}
	var events []eventJSON
	var kinds []string
	for len(events) < 2 && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			kinds = append(kinds, strings.TrimPrefix(line, "event: "))
		case strings.HasPrefix(line, "data: "):
			var ev eventJSON
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
				t.Fatalf("data line %q: %v", line, err)
			}
			events = append(events, ev)
		}
	}
	if len(events) != 2 {
		t.Fatalf("stream ended: %v", sc.Err())
	}
	if e := events[0]; e.Key != "user:9" || e.Op != "invalidate" || e.Origin != "b" || e.Zone != "b" || e.Scope != "global" || len(e.ID) != 32 || e.Time == "" {
		t.Errorf("first event %+v", e)
	}
	if e := events[1]; e.Key != "user:10" || e.Origin != "c" || e.Scope != "local" {
		t.Errorf("second event %+v", e)
	}
	if !slices.Equal(kinds, []string{"invalidate", "invalidate"}) {
		t.Errorf("event kinds %v", kinds)
	}
	if w := c.api.watching(); w[input.WatchPrefix] != 1 {
		t.Errorf("watching %v", w)
	}
}

func TestWatchNDJSONWithResyncsUntilTheClientLeaves(t *testing.T) {
	net := syncbus.NewInMemoryNetwork()
	node, err := net.Join("a", "a")
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	bus := &streamBus{InMemoryBus: node, ch: make(chan syncbus.Event, 4)}
	c := newMemCluster(t, apiConfig{Bus: bus})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, sc := openWatch(t, ctx, c.srv.URL+"/v1/watch?all", true)
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("Content-Type %q", ct)
	}
	bus.ch <- syncbus.Event{Key: "user:1", Op: syncbus.OpInvalidate, Origin: "x"}
	bus.ch <- syncbus.Event{Key: "", Op: syncbus.OpResync, Origin: "y"}
	var got []eventJSON
	for len(got) < 2 && sc.Scan() {
		var ev eventJSON
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, ev)
	}
	if len(got) != 2 || got[0].Op != "invalidate" || got[1].Op != "resync" || got[1].Origin != "y" {
		t.Fatalf("events %+v (%v)", got, sc.Err())
	}
	subCtx := *bus.subCtx.Load()
	if subCtx.Err() != nil {
		t.Fatal("the subscription ended while the client was reading")
	}

	// The client goes away mid-stream: the handler ends and its
	// subscription's context is cancelled.
	cancel()
	resp.Body.Close()
	eventually(t, 5*time.Second, func() bool { return c.api.watching()[input.WatchPrefix] == 0 && subCtx.Err() != nil },
		"the stream outlived its client: watching %v", c.api.watching())
}

func TestWatchEndsWhenTheBusCloses(t *testing.T) {
	c := newMemCluster(t, apiConfig{})
	resp, sc := openWatch(t, context.Background(), c.srv.URL+"/v1/watch?key=user:1", true)
	defer resp.Body.Close()
	eventually(t, 5*time.Second, func() bool { return c.api.watching()[input.WatchKey] == 1 }, "no key watch")
	if err := c.nodes["a"].Close(); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		t.Errorf("unexpected line %q", sc.Text())
	}
	eventually(t, 5*time.Second, func() bool { return c.api.watching()[input.WatchKey] == 0 }, "the stream did not end")
}

func TestWatchRefusesBadQueries(t *testing.T) {
	c := newMemCluster(t, apiConfig{})
	for _, q := range []string{"", "?key=", "?lease=", "?key=a&prefix=b", "?all=maybe", "?prefix=a&all"} {
		status, ans := c.get(t, "/v1/watch"+q)
		if status != http.StatusBadRequest || ans["field"] == nil {
			t.Errorf("%q: %d %v", q, status, ans)
		}
	}
}

func TestWatchKeyAndLeaseStreams(t *testing.T) {
	c := newMemCluster(t, apiConfig{KeepAlive: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, sc := openWatch(t, ctx, c.srv.URL+"/v1/watch?lease=l1", false)
	defer resp.Body.Close()
	if err := c.nodes["c"].RevokeLease(ctx, "l1"); err != nil {
		t.Fatal(err)
	}
	sawKeepAlive := false
	for sc.Scan() {
		line := sc.Text()
		if line == ": keep-alive" {
			sawKeepAlive = true
		}
		if strings.HasPrefix(line, "data: ") {
			if !strings.Contains(line, `"op":"lease_revoke"`) || !strings.Contains(line, `"key":"l1"`) {
				t.Fatalf("lease event %q", line)
			}
			break
		}
	}
	// Keep-alives flow on an idle stream.
	for !sawKeepAlive && sc.Scan() {
		sawKeepAlive = sc.Text() == ": keep-alive"
	}
	if !sawKeepAlive {
		t.Errorf("no keep-alive comment: %v", sc.Err())
	}
	if w := c.api.watching(); w[input.WatchLease] != 1 {
		t.Errorf("watching %v", w)
	}
}
