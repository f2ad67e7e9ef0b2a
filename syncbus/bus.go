package syncbus

import "context"

// Bus carries invalidation events between the nodes of a cluster.
//
// Every implementation in this module (the in-memory bus, the mesh and the
// broker bridges) honours the semantics in the package documentation and is
// checked by the conformance suite in syncbus/bustest. Implementations are
// safe for concurrent use.
type Bus interface {
	// Publish broadcasts an invalidation for key, optionally with PublishOptions.
	Publish(ctx context.Context, key string, opts ...PublishOption) error

	// PublishAndAwait broadcasts and waits for 'replicas' acknowledgements, optionally with PublishOptions.
	// Returns ErrQuorumNotSatisfied if timeout/failure.
	PublishAndAwait(ctx context.Context, key string, replicas int, opts ...PublishOption) error

	// PublishAndAwaitTopology broadcasts and waits for acknowledgements from a minimum number of zones.
	PublishAndAwaitTopology(ctx context.Context, key string, minZones int, opts ...PublishOption) error

	// Subscribe returns a channel that receives events for key.
	Subscribe(ctx context.Context, key string) (<-chan Event, error)

	// Unsubscribe stops listening.
	Unsubscribe(ctx context.Context, key string, ch <-chan Event) error

	// RevokeLease broadcasts the revocation of lease id.
	RevokeLease(ctx context.Context, id string) error
	// SubscribeLease returns a channel that receives the revocations of lease id.
	SubscribeLease(ctx context.Context, id string) (<-chan Event, error)
	// UnsubscribeLease stops listening for revocations of lease id.
	UnsubscribeLease(ctx context.Context, id string, ch <-chan Event) error
}

// PrefixSubscriber is implemented by buses that can deliver every event whose
// key starts with a prefix. The empty prefix subscribes to every key. A prefix
// subscription has a bounded buffer: when it overflows, the subscription gets
// one OpResync event (Key set to the prefix) instead of the events it could
// not hold. Lease revocations never reach prefix subscriptions.
type PrefixSubscriber interface {
	SubscribePrefix(ctx context.Context, prefix string) (<-chan Event, error)
	UnsubscribePrefix(ctx context.Context, prefix string, ch <-chan Event) error
}

// MemberLister is implemented by buses that know the nodes of their cluster.
type MemberLister interface {
	// Members returns a snapshot of the cluster, the local node included.
	Members() []Member
}

// Relayer is implemented by buses that can republish an event received
// elsewhere while keeping its identity: ID, Origin, Zone, Region, Scope, Op,
// VectorClock and Time are carried unchanged. Receivers deduplicate relayed
// events by ID within a bounded window, so several gateways relaying the same
// event never deliver it twice. A gateway uses this to join two buses.
type Relayer interface {
	Relay(ctx context.Context, ev Event) error
}

// MetricsReporter is implemented by every Bus in this module.
type MetricsReporter interface {
	Metrics() Metrics
}
