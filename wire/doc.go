// Package wire is the one frame format on every transport of the product —
// the UDP mesh and the NATS, Kafka and Redis bridges — and the only code
// that turns untrusted bytes into values.
//
// # Place in the import graph
//
// wire imports syncbus (for EventID, Op and Scope) and nothing else of
// ours. mesh, membership (the Marker byte and the Keyring) and the bridges
// import it.
//
// # Usage
//
// A sender builds frame bodies with the Append functions (or, for events
// batched up to a datagram size, an EventsBuilder or Split) and wraps each
// body in an envelope with a Sealer:
//
//	body, err := wire.AppendDigest(buf[:0], &wire.Digest{Origin: "n1", Boot: boot, Seq: 42}, false)
//	datagram, err := sealer.Seal(out[:0], body)
//
// A receiver opens the envelope with an Opener, looks at the body's type
// and decodes it into a value it reuses from frame to frame:
//
//	body, hdr, err := opener.Open(buf[:0], datagram)
//	switch t, _ := wire.PeekType(body); t {
//	case wire.FrameEvents:
//		err = wire.DecodeEvents(body, &events)
//	…
//	}
//
// Every failure matches one sentinel with errors.Is: ErrMalformed (the
// default), ErrVersion, ErrLabel, ErrAuth, ErrReplay or ErrTooLarge, and
// Reason turns it into a short metric label. Bad input never panics and is
// never trusted for a size: every count is checked against the named limits
// (MaxDatagramSize, MaxBodySize, MaxEventsPerFrame, MaxKeyLen, MaxNameLen,
// MaxVectorClock, MaxAckNodes, MaxAckSeqs, MaxRanges) and against the bytes
// that remain before anything is allocated for it.
//
// Sealer, Opener and Keyring are safe for concurrent use; EventsBuilder is
// not. The encode and decode functions are safe to call concurrently on
// distinct values. Decoded strings and maps are fresh and may be kept;
// decoded slices (Events.Events, Acks.Acks, the Seqs, the Ranges) are
// reused by the next decode into the same value.
//
// # Envelope (version 1)
//
// Every datagram, on every transport, is:
//
//	offset size  field
//	0      1     Marker (0x57, 'W'): tells our frames from memberlist's packets
//	1      1     version (1)
//	2      1     flags: 0x01 sealed; other bits reserved, must be 0
//	3      4     label tag: the first 4 bytes of SHA-256(cluster label)
//	7      4     key ID: the first 4 bytes of DeriveKey(key, "warp key id v1"), 0 when not sealed
//	11     16    sender ID: random, chosen when the Sealer is created
//	27     8     counter: big-endian, from 1, one per frame of that sender
//	35     n     body: ciphertext when sealed, plaintext otherwise
//	35+n   16|4  Poly1305 tag when sealed | CRC-32C when not
//
// A sealed frame is encrypted with XChaCha20-Poly1305 under
// DeriveKey(clusterKey, "warp frames v1") (never the raw key), with the
// 24-byte nonce sender ID || counter, which never repeats under one key;
// the additional data is the 35-byte header followed by the full cluster
// label, so a frame of another label fails authentication even if the
// 4-byte tags collide. An unsealed frame (no key in the keyring) ends with
// the big-endian CRC-32C (Castagnoli) of header || body || label, which
// catches corruption but authenticates nothing. An Opener with keys refuses
// unsealed frames, and one without keys refuses sealed ones (ErrAuth).
//
// The label tag lets a receiver tell "another cluster" (ErrLabel) from "a
// key we lack" (ErrAuth, also reported for a key ID no installed key has).
// The Opener keeps a replay window of 1024 counters per sender: a frame
// seen already or older than the window is ErrReplay. The window moves only
// after authentication succeeds.
//
// # Bodies
//
// A body is one type byte, then the frame's msgpack payload:
//
//	offset size  field
//	0      1     frame type (FrameEvents=1 … FrameAnnounce=8) | 0x80 when lz4-compressed
//	1      v     compressed only: uvarint length of the uncompressed payload
//	1(+v)  …     msgpack payload, or an lz4 block holding it
//
// The uncompressed length is checked against MaxBodySize (and against 255
// times the compressed size, lz4's largest ratio) before a buffer of exactly
// that size is taken, and the block must fill it exactly. Payloads are
// msgpack arrays with positional fields (their layouts are documented with
// each type: see Events, the control frames in control.go and Announce in
// announce.go). A decoder reads the fields it knows and skips any that a
// newer version appended; it ignores bytes after the payload's array.
//
// Frame types are append-only. So are fields: a new version may append
// fields to an array, never remove or reorder them.
//
// # Compatibility
//
// The golden vectors in testdata/v1 (bodies and sealed datagrams, with
// fixed keys, sender ID and counter) are the compatibility contract between
// transports and versions: a change that alters them is a protocol change.
package wire
