package syncbus

import "maps"

// PublishOption changes one publish call.
type PublishOption func(*PublishOptions)

// PublishOptions is the result of applying PublishOptions; bus
// implementations read it with ApplyPublishOptions.
type PublishOptions struct {
	// Region overrides the publisher's region on the event ("" keeps it).
	Region string
	// VectorClock travels with the event unchanged.
	VectorClock map[string]uint64
	// Scope of the event; ScopeLocal by default.
	Scope Scope
	// AckReport, when not nil, is filled by a successful awaiting call.
	AckReport *AckReport
	// ZoneQuorum, when > 0, makes a zone count only once that many of its
	// nodes (or all its alive nodes, if fewer) have applied the event.
	ZoneQuorum int
}

// ApplyPublishOptions returns the settings that opts describe.
func ApplyPublishOptions(opts ...PublishOption) PublishOptions {
	var o PublishOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// WithRegion sets the event's Region instead of the publisher's own.
func WithRegion(region string) PublishOption {
	return func(o *PublishOptions) { o.Region = region }
}

// WithVectorClock attaches a vector clock to the event. The map is copied.
func WithVectorClock(vc map[string]uint64) PublishOption {
	vc = maps.Clone(vc)
	return func(o *PublishOptions) { o.VectorClock = vc }
}

// WithScope sets the event's scope.
func WithScope(s Scope) PublishOption {
	return func(o *PublishOptions) { o.Scope = s }
}

// WithAckReport makes a successful PublishAndAwait or
// PublishAndAwaitTopology fill r with the nodes and zones that acknowledged
// the event. On failure the same figures are in the returned *QuorumError.
func WithAckReport(r *AckReport) PublishOption {
	return func(o *PublishOptions) { o.AckReport = r }
}

// WithZoneQuorum makes a zone count toward PublishAndAwaitTopology only once
// q of its nodes — or all its alive nodes, if it has fewer — have applied the
// event. In the publisher's own zone the publisher is one of them. With
// PublishAndAwaitTopology(ctx, key, k, WithZoneQuorum(q)) a writer gets
// "a quorum in each of k zones" (EACH_QUORUM when k is every zone).
// q <= 0 means 1: any one node of a zone makes it count.
func WithZoneQuorum(q int) PublishOption {
	return func(o *PublishOptions) { o.ZoneQuorum = q }
}

// AckReport says which nodes and zones applied an event. Nodes are sorted
// and never include the publisher; Zones are sorted and include the
// publisher's own zone for PublishAndAwaitTopology.
type AckReport struct {
	Nodes []string
	Zones []string
}
