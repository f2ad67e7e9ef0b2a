package chaos

import "time"

// Record is what a harness saw during one chaos run. Every time comes
// from the harness's clock.
type Record struct {
	// Nodes are the cluster's nodes.
	Nodes []Node
	// Streams are the subscriptions, in any order: one per watch stream
	// (a node's stream that ended and was opened again is two).
	Streams []Stream
	// Publishes are every publish the harness attempted.
	Publishes []Publish
	// Faults are the faults the harness applied.
	Faults []Fault
	// Exits are the node processes' exits that the harness did not cause.
	Exits []Exit
	// Samples are readings of the nodes' goroutines and memory.
	Samples []Sample
}

// Node is one node of the cluster.
type Node struct {
	Name, Zone string
}

// Ops of a delivery, as a watch stream spells them.
const (
	OpInvalidate  = "invalidate"
	OpLeaseRevoke = "lease_revoke"
	OpResync      = "resync"
)

// Delivery is one event a subscription received.
type Delivery struct {
	// At is when the harness received it.
	At     time.Time
	ID     string
	Key    string
	Op     string
	Origin string
}

// Stream is one subscription of a node, from its opening (the subscription
// exists from then on) to its end.
type Stream struct {
	Node   string
	Opened time.Time
	// Closed is when it ended; zero means it was still open when the
	// recording stopped.
	Closed time.Time
	Events []Delivery
}

// Kind is how an event was published.
type Kind string

// Kinds of publish.
const (
	Plain    Kind = "plain"    // Publish
	Replicas Kind = "replicas" // PublishAndAwait
	Zones    Kind = "zones"    // PublishAndAwaitTopology
)

// Reasons a publish failed, for Publish.Err. Only ReasonDeadline means the
// event was sent.
const (
	ReasonFailFast     = "fail_fast"    // the alive members could not satisfy it: nothing sent
	ReasonDeadline     = "deadline"     // sent, but not acknowledged enough in time
	ReasonBackpressure = "backpressure" // refused by flow control
	ReasonClosed       = "closed"       // the bus was closing
	ReasonUnreachable  = "unreachable"  // the harness could not reach the publisher (down, paused, timed out)
	ReasonOther        = "other"
)

// Publish is one publish the harness attempted.
type Publish struct {
	// Node is the publisher; Key is unique to this publish.
	Node string
	Key  string
	Kind Kind
	// Asked is the replicas or zones asked for (0 for Plain).
	Asked int
	// Start and End bound the call.
	Start, End time.Time
	// Err is "" for success, else one of the Reason constants.
	Err string
	// AckedNodes and AckedZones are the ack report of a successful
	// awaited publish.
	AckedNodes, AckedZones []string
}

// Sent reports whether the event may have gone out: the call succeeded,
// or an awaited one timed out waiting for acknowledgements.
func (p *Publish) Sent() bool { return p.Err == "" || p.Err == ReasonDeadline }

// FaultKind names a fault.
type FaultKind string

// Kinds of fault.
const (
	Kill    FaultKind = "kill"    // SIGKILL, From the kill To the restart
	Restart FaultKind = "restart" // a graceful stop and start
	Pause   FaultKind = "pause"   // SIGSTOP … SIGCONT
	Cut     FaultKind = "cut"     // Nodes cut off from the others, links down … up
)

// Fault is one fault the harness applied to Nodes over [From, To] (To
// zero: until the end).
type Fault struct {
	Kind     FaultKind
	Nodes    []string
	From, To time.Time
}

// Exit is a node process's exit the harness did not cause: a crash.
type Exit struct {
	Node   string
	At     time.Time
	Detail string
}

// Sample is one reading of a node's resources.
type Sample struct {
	Node       string
	At         time.Time
	Goroutines int
	// MemoryBytes is the process's resident memory.
	MemoryBytes uint64
}
