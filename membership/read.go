package membership

import (
	"net"
	"net/netip"
)

// datagramReader takes datagrams off a UDP socket for the transport's read
// loop, which is its only user: it is not safe for concurrent use.
type datagramReader interface {
	// read blocks until at least one datagram has arrived and returns how
	// many it took, at least one unless it fails. A read that fails
	// because the socket was closed returns an error matching
	// net.ErrClosed.
	read() (int, error)
	// datagram returns the payload and sender of the i-th datagram of the
	// last read. The payload is the reader's own buffer: it is valid until
	// the next read.
	datagram(i int) ([]byte, netip.AddrPort)
}

// singleReader reads one datagram per system call: the reader of every
// system without batched reads, and of a transport configured with a
// ReadBatch of 1.
type singleReader struct {
	c    *net.UDPConn
	buf  []byte
	n    int
	from netip.AddrPort
}

var _ datagramReader = (*singleReader)(nil)

func newSingleReader(c *net.UDPConn) *singleReader {
	return &singleReader{c: c, buf: make([]byte, MaxDatagramSize)}
}

func (r *singleReader) read() (int, error) {
	n, from, err := r.c.ReadFromUDPAddrPort(r.buf)
	if err != nil {
		return 0, err
	}
	r.n, r.from = n, from
	return 1, nil
}

func (r *singleReader) datagram(int) ([]byte, netip.AddrPort) {
	return r.buf[:r.n], r.from
}
