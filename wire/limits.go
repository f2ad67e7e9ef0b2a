package wire

// Limits enforced at the edge. Encoders refuse to produce what decoders
// would refuse to accept, so a frame built by this package always decodes.
// Changing a limit is a protocol change: lowering one can make a newer
// build's frames undecodable by an older one.
const (
	// MaxDatagramSize is the largest sealed frame, on any transport.
	MaxDatagramSize = 64 << 10
	// MaxBodySize is the largest msgpack payload of a frame body (the body
	// without its type byte), once decompressed. The declared uncompressed
	// length of an lz4 body is checked against it before any buffer is
	// allocated.
	MaxBodySize = 256 << 10
	// MaxEventsPerFrame bounds the events of one Events frame.
	MaxEventsPerFrame = 4096
	// MaxKeyLen is the longest event key (or lease ID), in bytes.
	MaxKeyLen = 2048
	// MaxNameLen is the longest node name, zone, region or vector-clock
	// entry name, in bytes.
	MaxNameLen = 255
	// MaxVectorClock bounds the entries of one event's vector clock.
	MaxVectorClock = 64
	// MaxAckNodes bounds the acknowledging nodes in one Acks frame.
	MaxAckNodes = 1024
	// MaxAckSeqs bounds the sequence numbers in one Acks frame, over all
	// its nodes.
	MaxAckSeqs = 8192
	// MaxRanges bounds the ranges of one RepairRequest or Unavailable frame.
	MaxRanges = 1024

	// DefaultDatagramBudget is the default size of a sealed datagram the
	// batching code aims for: it fits a 1500-byte Ethernet MTU with room for
	// IP and UDP headers (and some tunnelling).
	DefaultDatagramBudget = 1400
)

// maxLZ4Ratio is the most an lz4 block can expand: a run-length match of up
// to 255 bytes per input byte, plus slack. A declared uncompressed length
// beyond this multiple of the compressed size is a lie, rejected before
// allocating anything.
const maxLZ4Ratio = 255
