package nats

// SetMuted makes b stop (true) or resume acknowledging the events it
// delivers, for the conformance suite's deadline cases.
func SetMuted(b *NATSBus, muted bool) { b.link.SetAcking(!muted) }
