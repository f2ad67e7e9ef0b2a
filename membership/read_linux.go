//go:build linux

package membership

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgReader reads up to a batch of datagrams per recvmmsg call.
//
// The batch it asks for adapts to the traffic. recvmmsg costs more than
// recvfrom for a single datagram, and after the datagrams it found it
// tries once more before returning, so a reader woken for each datagram
// of light traffic would pay for batches it never fills. The reader
// therefore asks for one datagram, with recvfrom, until a call finds the
// socket holding at least what it asked for without having to wait: then
// it doubles what it asks for, up to the batch. A call that gets fewer
// than it asked for drained the socket, and the next asks for what that
// one got.
//
// It issues recvmmsg itself rather than through golang.org/x/net's
// ReadBatch, which turns every sender's address into a new *net.UDPAddr
// and its IP slice: two allocations per datagram on a path that otherwise
// has none. Here the kernel writes each sender's raw address into a slot
// of the reader, and datagram turns it into a netip.AddrPort, a value.
//
// Every header, vector and address slot is allocated once, so that a read
// allocates nothing. The kernel writes into them only during the system
// call, which runs on the reader's goroutine inside RawConn.Read, so the
// Go memory it touches is reachable and unchanged throughout.
type mmsgReader struct {
	rc    syscall.RawConn
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // room for either family's address
	bufs  [][]byte

	// want is how many datagrams the next call asks for, 1 to len(hdrs).
	want int

	// The result of the last system call, set by recv inside RawConn.Read:
	// how many datagrams it got, its error, and whether the socket was
	// empty at first, so that the reader had to wait.
	n      int
	errno  syscall.Errno
	waited bool
	recvF  func(fd uintptr) bool // recv, bound once: a method value allocates

	zones map[uint32]string // interface names by index, for link-local senders
}

var _ datagramReader = (*mmsgReader)(nil)

// maxZoneNames bounds the reader's cache of interface names: interface
// indexes are the kernel's, but a host that keeps creating interfaces
// should not grow it for ever.
const maxZoneNames = 64

// newBatchReader returns a reader of batch datagrams per system call, or
// nil when the socket offers no raw access.
func newBatchReader(c *net.UDPConn, batch int) datagramReader {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	r := &mmsgReader{
		rc:    rc,
		hdrs:  make([]unix.Mmsghdr, batch),
		iovs:  make([]unix.Iovec, batch),
		names: make([]unix.RawSockaddrInet6, batch),
		bufs:  make([][]byte, batch),
		want:  1,
	}
	mem := make([]byte, batch*MaxDatagramSize)
	for i := range batch {
		r.bufs[i] = mem[i*MaxDatagramSize : (i+1)*MaxDatagramSize : (i+1)*MaxDatagramSize]
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(MaxDatagramSize)
		h := &r.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
	}
	r.recvF = r.recv
	return r
}

func (r *mmsgReader) read() (int, error) {
	// The kernel shortens each name length to the address it wrote and
	// sets the flags and lengths; a new call starts from the full slots.
	for i := range r.want {
		r.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		r.hdrs[i].Hdr.Flags = 0
		r.hdrs[i].Len = 0
	}
	r.n, r.errno, r.waited = 0, 0, false
	if err := r.rc.Read(r.recvF); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		call := "recvmmsg"
		if r.want == 1 {
			call = "recvfrom"
		}
		return 0, os.NewSyscallError(call, r.errno)
	}
	switch {
	case r.n < r.want:
		r.want = max(1, r.n)
	case !r.waited:
		r.want = min(2*r.want, len(r.hdrs))
	}
	return r.n, nil
}

// recv makes one system call on the non-blocking socket, for r.want
// datagrams. It reports false, to wait until the socket is readable and be
// called again, when nothing has arrived. Without a timeout and flags,
// recvmmsg returns what the socket held, up to the batch, without waiting
// for more.
func (r *mmsgReader) recv(fd uintptr) bool {
	for {
		var n uintptr
		var e syscall.Errno
		if r.want == 1 {
			h := &r.hdrs[0]
			n, _, e = unix.Syscall6(unix.SYS_RECVFROM, fd,
				uintptr(unsafe.Pointer(&r.bufs[0][0])), uintptr(len(r.bufs[0])), 0,
				uintptr(unsafe.Pointer(&r.names[0])), uintptr(unsafe.Pointer(&h.Hdr.Namelen)))
			if e == 0 {
				h.Len = uint32(n)
				n = 1
			}
		} else {
			n, _, e = unix.Syscall6(unix.SYS_RECVMMSG, fd,
				uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(r.want), 0, 0, 0)
		}
		switch e {
		case 0:
			r.n = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			r.waited = true
			return false
		default:
			r.errno = e
			return true
		}
	}
}

func (r *mmsgReader) datagram(i int) ([]byte, netip.AddrPort) {
	h := &r.hdrs[i]
	return r.bufs[i][:h.Len], r.source(i, h.Hdr.Namelen)
}

// source decodes the sender's address the kernel wrote into slot i. An
// address of another family or length is reported as the zero AddrPort,
// as the standard library's reads report it.
func (r *mmsgReader) source(i int, namelen uint32) netip.AddrPort {
	sa := &r.names[i]
	switch {
	case sa.Family == unix.AF_INET && namelen >= unix.SizeofSockaddrInet4:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), networkPort(&sa4.Port))
	case sa.Family == unix.AF_INET6 && namelen >= unix.SizeofSockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(r.zoneName(sa.Scope_id))
		}
		return netip.AddrPortFrom(a, networkPort(&sa.Port))
	}
	return netip.AddrPort{}
}

// networkPort reads a port stored in network byte order, whatever the
// machine's own order.
func networkPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// zoneName names the interface with index idx the way the standard library
// names a link-local sender's zone: by interface name, or by number when
// the interface is gone.
func (r *mmsgReader) zoneName(idx uint32) string {
	if name, ok := r.zones[idx]; ok {
		return name
	}
	name := strconv.FormatUint(uint64(idx), 10)
	if ifc, err := net.InterfaceByIndex(int(idx)); err == nil {
		name = ifc.Name
	}
	if r.zones == nil || len(r.zones) >= maxZoneNames {
		r.zones = make(map[uint32]string)
	}
	r.zones[idx] = name
	return name
}
