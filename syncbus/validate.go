package syncbus

import (
	"errors"
	"fmt"
)

// ErrInvalidEvent is matched by the error of Relay for an event that cannot
// be relayed: a zero ID, an Op other than OpInvalidate or OpLeaseRevoke, or
// an unknown Scope. (An empty key is ErrInvalidKey.)
var ErrInvalidEvent = errors.New("syncbus: invalid event")

// ValidateKey returns ErrInvalidKey for an empty key or lease ID, nil
// otherwise. Buses call it first in every method that takes a key, so the
// same input fails the same way on every transport.
func ValidateKey(key string) error {
	if key == "" {
		return ErrInvalidKey
	}
	return nil
}

// ValidateRelayed checks an event handed to Relay. It returns ErrInvalidKey
// for an empty key, and an error matching ErrInvalidEvent (saying which
// field is wrong) for a zero ID, an Op that is not OpInvalidate or
// OpLeaseRevoke (a resync describes one node's losses and is never relayed)
// or an unknown Scope.
func ValidateRelayed(ev Event) error {
	if err := ValidateKey(ev.Key); err != nil {
		return err
	}
	if ev.ID.IsZero() {
		return fmt.Errorf("%w: zero ID", ErrInvalidEvent)
	}
	if ev.Op != OpInvalidate && ev.Op != OpLeaseRevoke {
		return fmt.Errorf("%w: op %v cannot be relayed", ErrInvalidEvent, ev.Op)
	}
	if !ev.Scope.Valid() {
		return fmt.Errorf("%w: unknown scope %v", ErrInvalidEvent, ev.Scope)
	}
	return nil
}
