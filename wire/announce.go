package wire

import "net/netip"

// This file holds the Announce frame, the one frame of multicast
// discovery. Its msgpack layout is one array:
//
//	Announce: [Node, Addr (IP text), Port, Zone]
//
// It is sealed like every frame: the envelope carries and authenticates the
// cluster label, and with keys installed only a key holder can make one.

// Announce is a node announcing itself on a multicast group: its name and
// the address and port its gossip listens on, so that a node that hears it
// can join it, and its zone, for logs. It carries nothing secret.
type Announce struct {
	// Node is the announcing node's name; never empty.
	Node string
	// Addr is the node's advertised address and port: a valid IP address
	// without a zone, and a port other than 0.
	Addr netip.AddrPort
	// Zone is the node's zone.
	Zone string
}

const (
	announceFields = 4
	// maxAddrText bounds the text of an IP address (the longest IPv6 form,
	// with an embedded IPv4 address, is 45 bytes).
	maxAddrText = 64
)

// checkAnnounceAddr refuses what the decoder refuses: an invalid address,
// one with an IPv6 zone (meaningless on another host), or port 0.
func checkAnnounceAddr(a netip.AddrPort) error {
	switch {
	case !a.Addr().IsValid():
		return errorf(ErrMalformed, "announce: no address")
	case a.Addr().Zone() != "":
		return errorf(ErrMalformed, "announce: address %v has a zone", a.Addr())
	case a.Port() == 0:
		return errorf(ErrMalformed, "announce: port 0")
	}
	return nil
}

// AppendAnnounce appends the body of an Announce frame to dst.
func AppendAnnounce(dst []byte, f *Announce, compress bool) ([]byte, error) {
	if err := checkName("node", f.Node, true); err != nil {
		return dst, err
	}
	if err := checkName("zone", f.Zone, false); err != nil {
		return dst, err
	}
	if err := checkAnnounceAddr(f.Addr); err != nil {
		return dst, err
	}
	return encodeBody(dst, FrameAnnounce, compress, func(b []byte) []byte {
		b = appendArrayHeader(b, announceFields)
		b = appendString(b, f.Node)
		b = appendString(b, f.Addr.Addr().String())
		b = appendUint(b, uint64(f.Addr.Port()))
		return appendString(b, f.Zone)
	})
}

// DecodeAnnounce decodes an Announce frame body into f.
func DecodeAnnounce(body []byte, f *Announce) error {
	return decodeWith(body, FrameAnnounce, "announce", func(r *reader) {
		n := header(r, announceFields)
		r.stringInto(&f.Node, "node", MaxNameLen)
		if r.err == nil && f.Node == "" {
			r.fail(ErrMalformed, "node is empty")
		}
		text := r.str("addr", maxAddrText)
		port := r.uint("port")
		if r.err != nil {
			return
		}
		ip, err := netip.ParseAddr(string(text))
		switch {
		case err != nil:
			r.fail(ErrMalformed, "addr %q is not an IP address", text)
		case ip.Zone() != "":
			r.fail(ErrMalformed, "addr %v has a zone", ip)
		case port == 0 || port > 0xffff:
			r.fail(ErrMalformed, "port %d out of range", port)
		}
		if r.err != nil {
			return
		}
		f.Addr = netip.AddrPortFrom(ip, uint16(port))
		r.stringInto(&f.Zone, "zone", MaxNameLen)
		r.skipFields(n, announceFields)
	})
}
