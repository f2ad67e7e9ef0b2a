package wire

// NewSealerAt returns a Sealer with a fixed sender ID whose next frame
// carries counter next, so that golden vectors are deterministic.
func NewSealerAt(kr *Keyring, label string, sender SenderID, next uint64) *Sealer {
	s := NewSealer(kr, label)
	s.sender = sender
	s.counter.Store(next - 1)
	return s
}

// ReplayWindow is the number of counters behind the newest that the
// Opener still accepts.
const ReplayWindow = replayWindow
