package nats

// Hooks for the fuzz target: the bytes of a broker message go to the bus
// exactly as its subscription reader hands them over, without a broker in
// between, so each input is judged on its own.

// Receive hands data, with the reply subject it came with, to b's receiving
// side, as the reader of b's subscriptions does with every message but
// b's own (those whose reply subject is b's inbox, which it drops
// unopened: the fuzzer cannot guess the inbox anyway).
func Receive(b *NATSBus, data []byte, reply string) { b.link.Receive(data, reply) }

// Boot returns b's incarnation.
func Boot(b *NATSBus) uint64 { return b.link.Boot() }
