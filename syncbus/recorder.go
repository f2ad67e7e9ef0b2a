package syncbus

import "time"

// Recorder receives a bus's measurements as they happen, for a metrics
// system of the caller's choice (Prometheus, OpenTelemetry, …): the library
// itself depends on none. Counters are not pushed: read them from Metrics
// when the metrics system scrapes.
//
// Implementations must be safe for concurrent use and fast: the bus calls
// them on its hot paths, never under a lock that a subscriber could hold.
type Recorder interface {
	// AckLatency records how long a satisfied PublishAndAwait (kind
	// QuorumReplicas) or PublishAndAwaitTopology (QuorumZones) took.
	AckLatency(kind QuorumKind, d time.Duration)
	// DeliveryDelay records, for an event another node published, the time
	// from its publication (by the origin's clock) to its hand-over to this
	// node's subscriptions. Clocks of different hosts disagree a little:
	// read it as a propagation estimate, and expect small negative values.
	DeliveryDelay(d time.Duration)
	// FlowStall records a time the publisher waited for its slowest
	// receiver's flow-control credit.
	FlowStall(d time.Duration)
}

// NopRecorder is a Recorder that records nothing: the default of every Bus.
type NopRecorder struct{}

// AckLatency does nothing.
func (NopRecorder) AckLatency(QuorumKind, time.Duration) {}

// DeliveryDelay does nothing.
func (NopRecorder) DeliveryDelay(time.Duration) {}

// FlowStall does nothing.
func (NopRecorder) FlowStall(time.Duration) {}
