package syncbus

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
	"time"
)

// Op is what an event asks its receivers to do.
type Op uint8

//go:generate go run golang.org/x/tools/cmd/stringer@v0.52.0 -type=Op,Scope,MemberState -output=enums_string.go

const (
	// OpInvalidate asks receivers to drop their cached copy of Key.
	OpInvalidate Op = iota
	// OpLeaseRevoke revokes the lease whose ID is in Key. It reaches lease
	// subscriptions only, never key or prefix subscriptions.
	OpLeaseRevoke
	// OpResync tells a subscription that events it covers may have been
	// missed: the receiver should drop everything the subscription covers
	// (Key is the subscription's key, prefix or lease ID). Origin names the
	// node whose events may be missing, when it is known.
	OpResync
)

// Valid reports whether op is one of the defined operations.
func (op Op) Valid() bool { return op <= OpResync }

// Scope says how far an event travels when buses are joined by gateways.
type Scope uint8

const (
	// ScopeLocal events stay within the publisher's region (the default).
	ScopeLocal Scope = iota
	// ScopeGlobal events are relayed to every region.
	ScopeGlobal
)

// Valid reports whether s is one of the defined scopes.
func (s Scope) Valid() bool { return s <= ScopeGlobal }

// EventID identifies one event. It is unique per event across the cluster
// and is kept when an event is relayed between buses.
type EventID [16]byte

// String returns the ID in lowercase hexadecimal.
func (id EventID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero ID.
func (id EventID) IsZero() bool { return id == EventID{} }

// Event is one invalidation, lease revocation or resync as a subscriber
// receives it.
//
// An Event received from a channel belongs to the receiver, except
// VectorClock, which may be shared with the other subscriptions that
// received the same event: treat it as read-only.
type Event struct {
	// ID is unique per event and kept when the event is relayed.
	ID EventID
	// Key is the invalidated key, the revoked lease's ID, or for a resync the
	// key, prefix or lease ID of the subscription it is delivered to.
	Key string
	// Op is what the event asks for.
	Op Op
	// Origin is the name of the node that published the event.
	Origin string
	// Zone is the origin's availability zone.
	Zone string
	// Region is the origin's region, unless WithRegion overrode it.
	Region string
	// VectorClock is the clock given with WithVectorClock, or nil.
	VectorClock map[string]uint64
	// Scope is ScopeLocal unless WithScope said otherwise.
	Scope Scope
	// Time is when the event was published, by the origin's clock.
	Time time.Time
}

// IDGenerator makes EventIDs that are unique without coordination: a random
// 64-bit prefix chosen once, then a counter. It is safe for concurrent use;
// the zero value is not usable, call NewIDGenerator.
type IDGenerator struct {
	prefix  uint64
	counter atomic.Uint64
}

// NewIDGenerator returns a generator with a fresh random prefix.
func NewIDGenerator() *IDGenerator {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	g := &IDGenerator{prefix: binary.BigEndian.Uint64(b[:8])}
	// Start the counter at a random point too, so that two generators that
	// somehow share a prefix are still unlikely to collide.
	g.counter.Store(binary.BigEndian.Uint64(b[8:]) >> 16)
	return g
}

// Next returns a new ID.
func (g *IDGenerator) Next() EventID {
	var id EventID
	binary.BigEndian.PutUint64(id[:8], g.prefix)
	binary.BigEndian.PutUint64(id[8:], g.counter.Add(1))
	return id
}
