package cli

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
)

// scrape reads url in Prometheus's text format and parses it with
// client_golang's parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

// sample returns the metric of family name whose labels include want, or
// nil.
func sample(fams map[string]*dto.MetricFamily, name string, want ...string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	m := sample(fams, name, labels...)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

func TestMetricsEndpoint(t *testing.T) {
	nm := newNodeMetrics()
	c := newMemCluster(t, apiConfig{Metrics: nm.handler()})
	nm.watchBus(c.nodes["a"], c.api.watching)

	for i := range 3 {
		if status, ans := c.post(t, "/v1/publish", fmt.Sprintf(`{"key":"user:%d","zones":3}`, i)); status != http.StatusOK {
			t.Fatalf("%d %v", status, ans)
		}
	}
	if status, _ := c.post(t, "/v1/publish", `{"key":"user:9","zones":9}`); status != http.StatusServiceUnavailable {
		t.Fatalf("impossible publish: %d", status)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, _ := openWatch(t, ctx, c.srv.URL+"/v1/watch?prefix=x", true)
	defer resp.Body.Close()
	if err := c.nodes["c"].Close(); err != nil {
		t.Fatal(err)
	}

	fams := scrape(t, c.srv.URL+"/metrics")
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"warp_published_total", nil, 3},
		{"warp_awaits_total", []string{"outcome", "satisfied"}, 3},
		{"warp_awaits_total", []string{"outcome", "failed"}, 1},
		{"warp_awaits_total", []string{"outcome", "fail_fast"}, 1},
		{"warp_acks_received_total", nil, 6},
		{"warp_members", []string{"zone", "b", "state", "alive"}, 1},
		{"warp_members", []string{"zone", "c", "state", "left"}, 1},
		{"warp_members", []string{"zone", "c", "state", "alive"}, 0},
		{"warp_subscriptions", []string{"kind", "prefix"}, 1},
		{"warp_subscriptions", []string{"kind", "key"}, 0},
		{"warp_flow_stalls_total", nil, 0},
	} {
		if got := value(fams, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	for _, name := range []string{"warp_ack_latency_seconds", "warp_delivery_delay_seconds", "warp_flow_stall_duration_seconds"} {
		if f := fams[name]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
			t.Errorf("%s: %v, want a histogram", name, f)
		}
	}
	if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Error("the Go runtime's and the process's metrics are missing")
	}

	// What the bus records reaches the histograms.
	nm.recorder.AckLatency(syncbus.QuorumZones, 3*time.Millisecond)
	nm.recorder.AckLatency(syncbus.QuorumReplicas, time.Millisecond)
	nm.recorder.DeliveryDelay(-time.Millisecond) // clock skew: counted as 0
	nm.recorder.FlowStall(20 * time.Millisecond)
	fams = scrape(t, c.srv.URL+"/metrics")
	if h := sample(fams, "warp_ack_latency_seconds", "mode", "zones").GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 0.003 {
		t.Errorf("ack latency (zones): %v", h)
	}
	if h := sample(fams, "warp_ack_latency_seconds", "mode", "replicas").GetHistogram(); h.GetSampleCount() != 1 {
		t.Errorf("ack latency (replicas): %v", h)
	}
	if h := sample(fams, "warp_delivery_delay_seconds").GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 0 {
		t.Errorf("delivery delay: %v", h)
	}
	if h := sample(fams, "warp_flow_stall_duration_seconds").GetHistogram(); h.GetSampleCount() != 1 {
		t.Errorf("flow stall: %v", h)
	}
}

// TestMeshFeedsTheHistograms runs two mesh nodes whose Recorder is warp
// node's, and checks that traffic fills the histograms.
func TestMeshFeedsTheHistograms(t *testing.T) {
	nm := newNodeMetrics()
	var buses []*mesh.MeshBus
	for i, zone := range []string{"a", "b"} {
		o := mesh.MeshOptions{NodeName: "n" + zone, BindAddr: "127.0.0.1", Port: -1, Zone: zone, Profile: "local"}
		if i == 0 {
			o.Recorder = nm.recorder
		} else {
			o.Peers = []string{buses[0].Addr().String()}
			o.Recorder = nm.recorder
		}
		b, err := mesh.NewMeshBus(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		buses = append(buses, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, b := range buses {
		if err := b.WaitForMembers(ctx, 2); err != nil {
			t.Fatal(err)
		}
	}
	api := newAPIServer(apiConfig{Bus: buses[0], Metrics: nm.handler()})
	nm.watchBus(buses[0], api.watching)
	srv := newTestServer(t, api)
	for i := range 5 {
		if err := buses[0].PublishAndAwait(ctx, fmt.Sprintf("k%d", i), 1); err != nil {
			t.Fatal(err)
		}
		if err := buses[0].PublishAndAwaitTopology(ctx, fmt.Sprintf("z%d", i), 2); err != nil {
			t.Fatal(err)
		}
	}
	fams := scrape(t, srv+"/metrics")
	for _, mode := range []string{"replicas", "zones"} {
		if n := sample(fams, "warp_ack_latency_seconds", "mode", mode).GetHistogram().GetSampleCount(); n != 5 {
			t.Errorf("ack latency (%s): %d observations, want 5", mode, n)
		}
	}
	// Node b delivered ten events published by node a.
	if n := sample(fams, "warp_delivery_delay_seconds").GetHistogram().GetSampleCount(); n < 10 {
		t.Errorf("delivery delay: %d observations, want at least 10", n)
	}
	if got := value(fams, "warp_published_total"); got != 10 {
		t.Errorf("published %v", got)
	}
}
