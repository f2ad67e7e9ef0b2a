package syncbus

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrQuorumUnsupported is returned by a Bus that cannot count
	// acknowledgements. Every Bus in this module can; it exists for
	// implementations outside it.
	ErrQuorumUnsupported = errors.New("syncbus: quorum unsupported")
	// ErrQuorumNotSatisfied is matched by every error of PublishAndAwait and
	// PublishAndAwaitTopology that reports too few acknowledgements. The
	// error itself is a *QuorumError with the figures.
	ErrQuorumNotSatisfied = errors.New("syncbus: quorum not satisfied")
	// ErrClosed is returned by every method of a closed Bus.
	ErrClosed = errors.New("syncbus: closed")
	// ErrInvalidKey is returned for an empty key or lease ID.
	ErrInvalidKey = errors.New("syncbus: invalid key")
	// ErrBackpressure is returned by a publish that waited for its bus's
	// flow control longer than the bus allows (for the mesh,
	// MeshOptions.BackpressureTimeout): the receivers are not taking events
	// as fast as they are published. Nothing was sent; the call may be
	// retried. A publish whose own ctx ends first returns the ctx's error.
	ErrBackpressure = errors.New("syncbus: backpressure: receivers are not keeping up")
)

// QuorumKind says what an awaiting call was counting.
type QuorumKind uint8

const (
	// QuorumReplicas counts other nodes (PublishAndAwait).
	QuorumReplicas QuorumKind = iota + 1
	// QuorumZones counts zones (PublishAndAwaitTopology).
	QuorumZones
)

// QuorumError reports an awaiting call that was not satisfied. It matches
// ErrQuorumNotSatisfied with errors.Is, and unwraps to its Cause (for
// example context.DeadlineExceeded), so errors.Is holds for that too.
type QuorumError struct {
	Kind QuorumKind
	// Required is the number of replicas or zones asked for (after a value
	// <= 0 was raised to 1).
	Required int
	// ZoneQuorum is the per-zone quorum in force (0 when none was asked).
	ZoneQuorum int
	// Available is how many replicas or zones the members known alive when
	// the call started could provide at most.
	Available int
	// FailFast is true when the call returned at once, without sending,
	// because the alive members could not satisfy it.
	FailFast bool
	// AckedNodes and AckedZones say who acknowledged before the call gave
	// up (sorted; AckedZones includes the publisher's zone for zone counts).
	AckedNodes []string
	AckedZones []string
	// Cause is why waiting stopped (a context error), or nil.
	Cause error
}

// Error describes what was required and what was obtained.
func (e *QuorumError) Error() string {
	var b strings.Builder
	b.WriteString(ErrQuorumNotSatisfied.Error())
	switch e.Kind {
	case QuorumZones:
		fmt.Fprintf(&b, ": %d of %d zones applied", len(e.AckedZones), e.Required)
		if e.ZoneQuorum > 0 {
			fmt.Fprintf(&b, " (zone quorum %d)", e.ZoneQuorum)
		}
	default:
		fmt.Fprintf(&b, ": %d of %d replicas acknowledged", len(e.AckedNodes), e.Required)
	}
	if e.FailFast {
		fmt.Fprintf(&b, "; only %d available, failed fast", e.Available)
	}
	if len(e.AckedNodes) > 0 {
		fmt.Fprintf(&b, "; nodes %v", e.AckedNodes)
	}
	if len(e.AckedZones) > 0 {
		fmt.Fprintf(&b, "; zones %v", e.AckedZones)
	}
	if e.Cause != nil {
		fmt.Fprintf(&b, ": %v", e.Cause)
	}
	return b.String()
}

// Is reports whether target is ErrQuorumNotSatisfied.
func (e *QuorumError) Is(target error) bool { return target == ErrQuorumNotSatisfied }

// Unwrap returns the cause, so errors.Is(err, context.DeadlineExceeded) holds
// when the deadline ended the wait.
func (e *QuorumError) Unwrap() error { return e.Cause }
