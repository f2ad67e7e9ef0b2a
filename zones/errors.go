package zones

import (
	"errors"
	"strconv"
)

var (
	// ErrNoLocal is returned by New when the local node is not among the
	// members. A topology without its own node could not say which zone the
	// publisher applies an event in.
	ErrNoLocal = errors.New("zones: local node not among members")
	// ErrEmptyName is matched by the *MemberError New returns for a member
	// without a name.
	ErrEmptyName = errors.New("zones: member with an empty name")
	// ErrDuplicateName is matched by the *MemberError New returns when two
	// members share a name.
	ErrDuplicateName = errors.New("zones: duplicate member name")
	// ErrLocalMismatch is returned by Tracker.SetTopology when the new
	// topology is nil or belongs to another local node: a tracker counts the
	// acknowledgements of one publisher's event.
	ErrLocalMismatch = errors.New("zones: topology of another local node")
)

// MemberError reports a member that New refused. It matches its cause
// (ErrEmptyName or ErrDuplicateName) with errors.Is.
type MemberError struct {
	// Index is the member's position in the slice given to New.
	Index int
	// Name is the member's name (empty for ErrEmptyName).
	Name string
	// Err is the reason.
	Err error
}

// Error names the member and the reason.
func (e *MemberError) Error() string {
	return e.Err.Error() + " (member " + strconv.Itoa(e.Index) + " " + strconv.Quote(e.Name) + ")"
}

// Unwrap returns the reason, so errors.Is(err, ErrDuplicateName) holds.
func (e *MemberError) Unwrap() error { return e.Err }
