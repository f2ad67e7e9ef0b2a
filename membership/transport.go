package membership

import (
	"net/netip"

	"github.com/hashicorp/memberlist"
)

// Transport is the one network seam under a node: memberlist's packets and
// streams (it is a memberlist.NodeAwareTransport) plus the data plane's
// datagrams, all on the node's single address. NetTransport implements it
// on real sockets; a simulated network implements it to run the same code
// in one process.
//
// An implementation splits incoming datagrams by their first byte: one that
// starts with wire.Marker is the data plane's and goes to Datagrams, every
// other one is memberlist's and goes to PacketCh. Neither consumer may hold
// the other back: when one channel is full, its datagrams are dropped (and
// counted), never queued in front of the other's.
//
// FinalAdvertiseAddr is called with port 0 when the configuration leaves
// the port to the transport; the transport then advertises the port it is
// bound to.
//
// Membership owns the Transport it runs on: memberlist calls Shutdown when
// the Membership closes. Implementations must be safe for concurrent use,
// and Shutdown must be idempotent.
type Transport interface {
	memberlist.NodeAwareTransport

	// Datagrams delivers the data plane's datagrams: those whose first
	// byte is wire.Marker. The channel is never closed; a consumer selects
	// on its own done channel as well. Each Datagram must be released.
	Datagrams() <-chan *Datagram

	// SendDatagram sends b, one sealed frame of the data plane, to addr.
	// The transport does not retain b. A send that the network drops is
	// not an error: datagrams are best effort.
	SendDatagram(addr netip.AddrPort, b []byte) error
}

// MultiSender is implemented by transports that can send one datagram to
// several addresses at once (sendmmsg on Linux). The data plane seals a
// frame once for all its receivers; a Transport that is also a MultiSender
// sends it to all of them for the cost of about one system call. Callers
// detect it with a type assertion and fall back to one SendDatagram per
// address.
//
// SendDatagramTo sends b to every address of addrs, as SendDatagram would
// to each: a datagram the network drops is not an error. It tries every
// address even when some fail, and then returns the first error, if any.
// It retains neither b nor addrs, and it is safe for concurrent use.
type MultiSender interface {
	SendDatagramTo(addrs []netip.AddrPort, b []byte) error
}

// Datagram is one datagram of the data plane received by a Transport.
//
// Data is borrowed from the transport: it is valid until Release is called
// and must not be used after. A Datagram is owned by one goroutine at a
// time.
type Datagram struct {
	// From is the sender's address.
	From netip.AddrPort
	// Data is the datagram's payload; its first byte is wire.Marker.
	Data []byte

	release func(*Datagram)
	buf     []byte // the pooled buffer Data points into, if any
}

// NewDatagram returns a Datagram for a Transport implementation to deliver.
// release, if not nil, is called once by Release to recycle the datagram
// and its buffer; with a nil release the garbage collector reclaims them.
func NewDatagram(from netip.AddrPort, data []byte, release func(*Datagram)) *Datagram {
	return &Datagram{From: from, Data: data, release: release}
}

// Release hands the datagram's buffer back to its transport. It must be
// called exactly once, after the last use of Data.
func (d *Datagram) Release() {
	r := d.release
	d.release = nil
	d.Data = nil
	d.From = netip.AddrPort{}
	if r != nil {
		r(d)
	}
}
