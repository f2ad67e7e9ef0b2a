package wire

// Marker is the first byte of every frame of ours, on every transport. It is
// distinct from every first byte memberlist sends: its message types (0–13
// in memberlist v0.7), its label header (244) and its encryption versions
// (0 and 1). A transport shared with memberlist sends a datagram to the data
// plane exactly when its first byte is Marker.
const Marker byte = 0x57 // 'W'

// IsFrame reports whether b starts like a frame of ours.
func IsFrame(b []byte) bool { return len(b) > 0 && b[0] == Marker }
