package membership

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Protocol versions of the data plane that nodes announce in their
// metadata. A node leaves peers that announce a version outside
// [MinProtocolVersion, ProtocolVersion] out of its topology.
const (
	// ProtocolVersion is the version this node speaks.
	ProtocolVersion uint8 = 1
	// MinProtocolVersion is the oldest version this node still speaks.
	MinProtocolVersion uint8 = 1
)

// MaxNameLen bounds a node's name, zone and region, in bytes.
const MaxNameLen = 255

// Layout of a node's metadata, as carried in memberlist's NodeMeta:
//
//	byte 0    metaMagicV1: marks our metadata and its layout version
//	uvarint   length of the zone, then the zone (UTF-8)
//	uvarint   length of the region, then the region (UTF-8)
//	8 bytes   boot ID, big endian
//	1 byte    protocol version of the data plane
//	8 bytes   start time of this incarnation, Unix nanoseconds, big endian
//	          (absent in the first layout: then unknown)
//	...       later layouts append fields here; readers ignore them
//
// A layout that old readers cannot skip gets a new magic byte.
const metaMagicV1 byte = 0xA1

// nodeMeta is what a node tells its peers about itself.
type nodeMeta struct {
	Zone    string
	Region  string
	Boot    uint64
	Proto   uint8
	Started int64 // Unix nanoseconds; 0 when unknown
}

// appendMeta appends the encoding of m to dst.
func appendMeta(dst []byte, m nodeMeta) []byte {
	dst = append(dst, metaMagicV1)
	dst = binary.AppendUvarint(dst, uint64(len(m.Zone)))
	dst = append(dst, m.Zone...)
	dst = binary.AppendUvarint(dst, uint64(len(m.Region)))
	dst = append(dst, m.Region...)
	dst = binary.BigEndian.AppendUint64(dst, m.Boot)
	dst = append(dst, m.Proto)
	return binary.BigEndian.AppendUint64(dst, uint64(m.Started))
}

// decodeMeta decodes a peer's metadata. Every failure matches
// ErrMetaMalformed, except a protocol version this node does not speak,
// which matches ErrMetaVersion (and still returns the decoded fields).
func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	if len(b) == 0 {
		return m, fmt.Errorf("%w: empty", ErrMetaMalformed)
	}
	if b[0] != metaMagicV1 {
		return m, fmt.Errorf("%w: unknown layout 0x%02x", ErrMetaMalformed, b[0])
	}
	rest := b[1:]
	var err error
	if m.Zone, rest, err = metaString(rest, "zone"); err != nil {
		return m, err
	}
	if m.Region, rest, err = metaString(rest, "region"); err != nil {
		return m, err
	}
	if len(rest) < 9 {
		return m, fmt.Errorf("%w: truncated after the region", ErrMetaMalformed)
	}
	m.Boot = binary.BigEndian.Uint64(rest)
	m.Proto = rest[8]
	if rest = rest[9:]; len(rest) >= 8 {
		m.Started = int64(binary.BigEndian.Uint64(rest))
	}
	if m.Proto < MinProtocolVersion || m.Proto > ProtocolVersion {
		return m, fmt.Errorf("%w: peer speaks %d, this node %d to %d",
			ErrMetaVersion, m.Proto, MinProtocolVersion, ProtocolVersion)
	}
	return m, nil
}

// metaString reads one length-prefixed string field.
func metaString(b []byte, field string) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return "", nil, fmt.Errorf("%w: bad %s length", ErrMetaMalformed, field)
	}
	b = b[k:]
	if n > MaxNameLen || n > uint64(len(b)) {
		return "", nil, fmt.Errorf("%w: %s length %d out of bounds", ErrMetaMalformed, field, n)
	}
	s := b[:n]
	if !utf8.Valid(s) {
		return "", nil, fmt.Errorf("%w: %s is not UTF-8", ErrMetaMalformed, field)
	}
	return string(s), b[n:], nil
}

// checkName validates a name, zone or region given in a Config.
func checkName(field, s string) error {
	if len(s) > MaxNameLen {
		return fmt.Errorf("%w: %s is %d bytes, more than %d", ErrConfig, field, len(s), MaxNameLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not UTF-8", ErrConfig, field)
	}
	return nil
}
