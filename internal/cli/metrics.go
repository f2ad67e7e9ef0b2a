package cli

import (
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/syncbus"
)

// metricsNamespace prefixes every metric of the bus.
const metricsNamespace = "warp"

// promRecorder is the syncbus.Recorder of warp node: it feeds the
// latencies the bus measures into Prometheus histograms. The bus calls it
// on its hot paths; a histogram observation is a few atomic operations.
type promRecorder struct {
	ackLatency    *prometheus.HistogramVec
	deliveryDelay prometheus.Histogram
	flowStall     prometheus.Histogram
}

var _ syncbus.Recorder = (*promRecorder)(nil)

// newPromRecorder registers the histograms in reg.
func newPromRecorder(reg prometheus.Registerer) *promRecorder {
	// From 50µs (an ack on loopback) to 10s (past any sane ack timeout).
	latency := prometheus.ExponentialBucketsRange(50e-6, 10, 18)
	r := &promRecorder{
		ackLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "ack_latency_seconds",
			Help:    "Time from publish to satisfaction of awaiting calls, by mode (replicas: PublishAndAwait, zones: PublishAndAwaitTopology).",
			Buckets: latency,
		}, []string{"mode"}),
		deliveryDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "delivery_delay_seconds",
			Help:    "Time from an event's publication on another node (by that node's clock) to its delivery here; negative clock skew counts as 0.",
			Buckets: latency,
		}),
		flowStall: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "flow_stall_duration_seconds",
			Help:    "Times the publisher waited for its slowest receiver's flow-control credit.",
			Buckets: latency,
		}),
	}
	reg.MustRegister(r.ackLatency, r.deliveryDelay, r.flowStall)
	// Make both modes appear at 0 before the first awaiting call, so that
	// dashboards and alerts see the series from the start.
	r.ackLatency.WithLabelValues("replicas")
	r.ackLatency.WithLabelValues("zones")
	return r
}

// AckLatency records a satisfied awaiting call.
func (r *promRecorder) AckLatency(kind syncbus.QuorumKind, d time.Duration) {
	mode := "replicas"
	if kind == syncbus.QuorumZones {
		mode = "zones"
	}
	r.ackLatency.WithLabelValues(mode).Observe(d.Seconds())
}

// DeliveryDelay records the propagation delay of one delivered event.
func (r *promRecorder) DeliveryDelay(d time.Duration) {
	r.deliveryDelay.Observe(max(d, 0).Seconds())
}

// FlowStall records one flow-control stall.
func (r *promRecorder) FlowStall(d time.Duration) {
	r.flowStall.Observe(d.Seconds())
}

// busCollector reads the bus's counters and members when Prometheus
// scrapes, so that the bus keeps no second copy of them.
type busCollector struct {
	bus     apiBus
	watches func() [numWatchKinds]int64
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, "", name), help, labels, nil)
}

var (
	descPublished      = desc("published_total", "Events this node published (publishes, awaiting calls, revocations, relays).")
	descDelivered      = desc("delivered_total", "Events handed to this node's subscriptions, one per subscription.")
	descCoalesced      = desc("coalesced_total", "Events an exact-key subscription did not receive because a newer one of its key replaced them.")
	descDropped        = desc("dropped_total", "Events a prefix subscription could not hold; each overflow became a resync.")
	descResyncs        = desc("resyncs_total", "Resync events handed to subscriptions.")
	descDuplicates     = desc("duplicates_total", "Received events that were already delivered.")
	descAcksSent       = desc("acks_sent_total", "Acknowledgements this node sent.")
	descAcksReceived   = desc("acks_received_total", "Acknowledgements this node received.")
	descAwaits         = desc("awaits_total", "Awaiting calls by outcome: satisfied, failed (fail_fast counts the failures returned without waiting, also counted in failed).", "outcome")
	descRetransmits    = desc("retransmits_total", "Events sent again: unacknowledged targets and repairs of other nodes' gaps.")
	descRepairRequests = desc("repair_requests_total", "Gap repair requests this node sent.")
	descRelayed        = desc("relayed_total", "Events this node forwarded for others.")
	descBatches        = desc("batches_total", "Data frames sent.")
	descSentMessages   = desc("sent_messages_total", "Datagrams sent, by path: local (own zone), remote (other zones), repair.", "path")
	descSentBytes      = desc("sent_bytes_total", "Bytes sent, by path.", "path")
	descRecvMessages   = desc("received_messages_total", "Datagrams received, by path: local or remote.", "path")
	descRecvBytes      = desc("received_bytes_total", "Bytes received, by path.", "path")
	descInputDropped   = desc("input_dropped_total", "Input this node refused, by reason (malformed, auth, label, replay, …).", "reason")
	descPublishErrors  = desc("publish_errors_total", "Publishes that failed.")
	descFlowStalls     = desc("flow_stalls_total", "Times publishing stopped because a receiver had no flow-control credit.")
	descFlowStallTime  = desc("flow_stall_seconds_total", "Total time publishing stood still for flow control.")
	descFlowReleased   = desc("flow_released_total", "Receivers that stayed without credit past the stall bound and stopped holding the others back.")
	descMembers        = desc("members", "Members this node knows, by zone and state (alive, suspect, left, failed).", "zone", "state")
	descSubscriptions  = desc("subscriptions", "Watch streams open on this node's HTTP API, by kind (key, prefix, lease).", "kind")
)

// Describe sends nothing: the collector's label values (zones, drop
// reasons) are only known at scrape time, which makes it unchecked.
func (c *busCollector) Describe(chan<- *prometheus.Desc) {}

// Collect reads the bus now.
func (c *busCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.bus.Metrics()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descPublished, m.Published)
	counter(descDelivered, m.Delivered)
	counter(descCoalesced, m.Coalesced)
	counter(descDropped, m.Dropped)
	counter(descResyncs, m.Resyncs)
	counter(descDuplicates, m.Duplicates)
	counter(descAcksSent, m.AcksSent)
	counter(descAcksReceived, m.AcksReceived)
	counter(descAwaits, m.AwaitSatisfied, "satisfied")
	counter(descAwaits, m.AwaitFailed, "failed")
	counter(descAwaits, m.AwaitFailFast, "fail_fast")
	counter(descRetransmits, m.Retransmits)
	counter(descRepairRequests, m.RepairRequests)
	counter(descRelayed, m.Relayed)
	counter(descBatches, m.Batches)
	for _, p := range []struct {
		path string
		t    syncbus.Traffic
	}{{"local", m.SentLocal}, {"remote", m.SentRemote}, {"repair", m.SentRepair}} {
		counter(descSentMessages, p.t.Messages, p.path)
		counter(descSentBytes, p.t.Bytes, p.path)
	}
	for _, p := range []struct {
		path string
		t    syncbus.Traffic
	}{{"local", m.ReceivedLocal}, {"remote", m.ReceivedRemote}} {
		counter(descRecvMessages, p.t.Messages, p.path)
		counter(descRecvBytes, p.t.Bytes, p.path)
	}
	for reason, n := range m.DropsByReason {
		counter(descInputDropped, n, reason)
	}
	counter(descPublishErrors, m.PublishErrors)
	counter(descFlowStalls, m.FlowStalls)
	ch <- prometheus.MustNewConstMetric(descFlowStallTime, prometheus.CounterValue, m.FlowStallTime.Seconds())
	counter(descFlowReleased, m.FlowReleased)

	// Every state of every known zone, zeros included, so that an alert on
	// "failed > 0" has a series to watch before the first failure.
	counts := map[string]*[4]int{}
	for _, mb := range c.bus.Members() {
		z := counts[mb.Zone]
		if z == nil {
			z = new([4]int)
			counts[mb.Zone] = z
		}
		if int(mb.State) < len(z) {
			z[mb.State]++
		}
	}
	zones := make([]string, 0, len(counts))
	for z := range counts {
		zones = append(zones, z)
	}
	slices.Sort(zones)
	for _, z := range zones {
		for st, n := range counts[z] {
			ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(n), z, stateName(syncbus.MemberState(st)))
		}
	}
	if c.watches != nil {
		w := c.watches()
		for kind, n := range w {
			ch <- prometheus.MustNewConstMetric(descSubscriptions, prometheus.GaugeValue, float64(n), watchKindNames[kind])
		}
	}
}

// nodeMetrics is the Prometheus side of a node: a registry with the Go
// runtime's and the process's metrics, the recorder's histograms and,
// once the bus exists, its counters and gauges.
type nodeMetrics struct {
	reg      *prometheus.Registry
	recorder *promRecorder
}

func newNodeMetrics() *nodeMetrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return &nodeMetrics{reg: reg, recorder: newPromRecorder(reg)}
}

// watchBus registers the collector that reads bus (and the API's watch
// streams) at scrape time.
func (nm *nodeMetrics) watchBus(bus apiBus, watches func() [numWatchKinds]int64) {
	nm.reg.MustRegister(&busCollector{bus: bus, watches: watches})
}

// watchBridge registers the collector that reads the gateway of --bridge
// and its broker bus at scrape time.
func (nm *nodeMetrics) watchBridge(gw gatewayStatser, bus bridgeHealther) {
	nm.reg.MustRegister(&bridgeCollector{gw: gw, bus: bus})
}

// handler serves the registry in Prometheus's text format (or OpenMetrics
// when the scraper asks for it).
func (nm *nodeMetrics) handler() http.Handler {
	return promhttp.HandlerFor(nm.reg, promhttp.HandlerOpts{Registry: nm.reg, EnableOpenMetrics: true})
}

// gatewayStatser is what the metrics read of a gateway (*bridge.Gateway).
type gatewayStatser interface {
	Stats() bridge.GatewayStats
}

// bridgeHealther is what the metrics read of a broker bus.
type bridgeHealther interface {
	Health() bridge.Health
	Metrics() syncbus.Metrics
}

// bridgeCollector reads the gateway of warp node --bridge and its broker
// bus when Prometheus scrapes.
type bridgeCollector struct {
	gw  gatewayStatser
	bus bridgeHealther
}

var (
	descBridgeRelayed       = desc("bridge_relayed_total", "Events the --bridge gateway relayed, by direction: out (mesh to broker) or in (broker to mesh).", "direction")
	descBridgeScoped        = desc("bridge_scoped_total", "Events the gateway kept on their side for their scope (ScopeLocal ones, with --bridge-scope global).")
	descBridgeReturning     = desc("bridge_returning_total", "Events the gateway did not relay because they came from the side they would go to (loops avoided).")
	descBridgeSourceResyncs = desc("bridge_source_resyncs_total", "Resyncs the gateway received from either side: events it may have missed and could not relay.")
	descBridgeErrors        = desc("bridge_relay_errors_total", "Relays that failed: the event did not cross.")
	descBridgeConnected     = desc("bridge_connected", "1 while the broker bus is connected and healthy, else 0.")
	descBridgeMembers       = desc("bridge_members", "Nodes the broker bus knows, this one included, by state (alive, suspect, left, failed).", "state")
	descBridgeReconnects    = desc("bridge_reconnects_total", "Reconnections of the broker bus to its broker.")
	descBridgeGaps          = desc("bridge_gaps_total", "Losses the broker bus found in a publisher's numbering.")
	descBridgeInputDropped  = desc("bridge_input_dropped_total", "Broker messages the broker bus refused, by reason (foreign, malformed, auth, label, replay, …).", "reason")
	descBridgePublishErrors = desc("bridge_publish_errors_total", "Sends to the broker that failed.")
)

// Describe sends nothing, as busCollector's.
func (c *bridgeCollector) Describe(chan<- *prometheus.Desc) {}

// Collect reads the gateway and the broker bus now.
func (c *bridgeCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	st := c.gw.Stats()
	counter(descBridgeRelayed, st.LocalToRemote, "out")
	counter(descBridgeRelayed, st.RemoteToLocal, "in")
	counter(descBridgeScoped, st.Scoped)
	counter(descBridgeReturning, st.Returning)
	counter(descBridgeSourceResyncs, st.SourceResyncs)
	counter(descBridgeErrors, st.Errors)

	h := c.bus.Health()
	connected := 0
	if h.Healthy && h.Connected {
		connected = 1
	}
	gauge(descBridgeConnected, connected)
	gauge(descBridgeMembers, h.Alive, "alive")
	gauge(descBridgeMembers, h.Suspect, "suspect")
	gauge(descBridgeMembers, h.Left, "left")
	gauge(descBridgeMembers, h.Failed, "failed")
	counter(descBridgeReconnects, h.Reconnects)
	counter(descBridgeGaps, h.Gaps)
	m := c.bus.Metrics()
	for reason, n := range m.DropsByReason {
		counter(descBridgeInputDropped, n, reason)
	}
	counter(descBridgePublishErrors, m.PublishErrors)
}
