package wire

import (
	"errors"
	"fmt"
)

// Errors of frame sealing, opening and decoding. Every failure to open or
// decode a frame matches exactly one of them with errors.Is, and the error's
// message says what was wrong. The mesh counts dropped frames by Reason.
var (
	// ErrMalformed is matched by every decoding failure that is not one of
	// the more specific errors below: truncation, bad checksums, bad msgpack,
	// invalid values, lying lengths.
	ErrMalformed = errors.New("wire: malformed frame")
	// ErrVersion is returned for a frame of a protocol version this build
	// does not speak.
	ErrVersion = errors.New("wire: unsupported version")
	// ErrLabel is returned for a frame of another cluster (another label).
	ErrLabel = errors.New("wire: frame of another cluster label")
	// ErrAuth is returned when a frame fails authentication, names a key that
	// is not installed, or is not sealed while keys are installed (and the
	// other way round). It is distinct from ErrMalformed: it says "not ours"
	// or "wrong key", not "corrupt".
	ErrAuth = errors.New("wire: authentication failed")
	// ErrReplay is returned for a frame whose counter was seen already or is
	// older than the sender's replay window.
	ErrReplay = errors.New("wire: replayed frame")
	// ErrTooLarge is returned for a datagram, body, string or count over one
	// of the package limits, and by encoders for an event that cannot fit in
	// any frame.
	ErrTooLarge = errors.New("wire: frame too large")
)

// Error is the error type of every failure in this package that carries
// details: Err is one of the sentinels above, Detail says what exactly was
// wrong. It matches its sentinel with errors.Is.
type Error struct {
	// Err is the sentinel the error matches (ErrMalformed, ErrVersion, …).
	Err error
	// Detail is a short description of the problem, for humans.
	Detail string
}

// Error returns the sentinel's message followed by the detail.
func (e *Error) Error() string { return e.Err.Error() + ": " + e.Detail }

// Unwrap returns the sentinel, so errors.Is(err, ErrMalformed) and friends
// hold.
func (e *Error) Unwrap() error { return e.Err }

// errorf builds an *Error for the sentinel kind. Errors are only built on
// failure paths, so the formatting cost never reaches the hot path.
func errorf(kind error, format string, args ...any) error {
	return &Error{Err: kind, Detail: fmt.Sprintf(format, args...)}
}

// Reason maps an error of this package to a short label for metrics and
// rate-limited logs: "malformed", "version", "label", "auth", "replay",
// "oversize", and "" for nil. Any other error counts as "malformed".
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrReplay):
		return "replay"
	case errors.Is(err, ErrAuth):
		return "auth"
	case errors.Is(err, ErrLabel):
		return "label"
	case errors.Is(err, ErrVersion):
		return "version"
	case errors.Is(err, ErrTooLarge):
		return "oversize"
	default:
		return "malformed"
	}
}
