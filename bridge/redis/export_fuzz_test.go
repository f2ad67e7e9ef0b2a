package redis

// Hooks for the fuzz target: the payload of a pub/sub message goes to the
// bus exactly as its reader hands it over, without a server in between, so
// each input is judged on its own.

// Receive hands payload to b's receiving side, as the reader of b's
// pub/sub connection does with every message (Redis carries no reply
// address).
func Receive(b *RedisBus, payload string) { b.link.Receive([]byte(payload), "") }

// Boot returns b's incarnation.
func Boot(b *RedisBus) uint64 { return b.link.Boot() }
