package membership

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/warpmesh/warp/syncbus"
)

var _ MultiSender = (*NetTransport)(nil)

const (
	// sendBatchSize is how many destinations one sendmmsg call takes; a
	// longer list goes out in several calls. A fanout beyond it is rare,
	// and each slot costs a little memory in every pooled batch.
	sendBatchSize = 64

	// maxSendRetries bounds how often one message is retried after an
	// interrupted call, so that a pathological system cannot spin a
	// sender for ever.
	maxSendRetries = 3
)

// batchWriter is the part of golang.org/x/net's ipv4 and ipv6 PacketConn
// that SendDatagramTo uses: WriteBatch sends a prefix of ms, at least one
// message unless it fails, and returns how many it sent. When it fails,
// the first message it was given is the one that failed.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// newBatchWriter returns the batched writer of c's family, or nil where
// WriteBatch is not sendmmsg: elsewhere it sends one message per call, no
// better than SendDatagram.
func newBatchWriter(c *net.UDPConn, is4 bool) batchWriter {
	if runtime.GOOS != "linux" {
		return nil
	}
	if is4 {
		return ipv4.NewPacketConn(c)
	}
	// A dual-stack socket reaches IPv4 peers through it as well.
	return ipv6.NewPacketConn(c)
}

// sendBatch is the scratch space of one SendDatagramTo call: a message per
// destination, each with its own address, all pointing at the caller's
// datagram. Batches live in the transport's pool, so concurrent calls
// neither share one nor allocate one.
type sendBatch struct {
	msgs  [sendBatchSize]ipv4.Message
	dests [sendBatchSize]netip.AddrPort // msgs[i] goes to dests[i]
	addrs [sendBatchSize]net.UDPAddr
	ips   [sendBatchSize][16]byte // the addresses' IPs, kept here to spare an allocation each
	bufs  [sendBatchSize][1][]byte
	used  int // slots filled since the last clear
}

func newSendBatch() *sendBatch {
	sb := new(sendBatch)
	for i := range sb.msgs {
		sb.msgs[i].Buffers = sb.bufs[i][:]
		sb.msgs[i].Addr = &sb.addrs[i]
	}
	return sb
}

// fill addresses one message to each valid address of addrs, in order,
// and returns them. Invalid addresses get no message; it returns the first
// of them.
func (sb *sendBatch) fill(addrs []netip.AddrPort, b []byte) (msgs []ipv4.Message, invalid int, firstInvalid netip.AddrPort) {
	k := 0
	for _, ap := range addrs {
		ap = unmapPort(ap)
		a := ap.Addr()
		if !a.IsValid() {
			if invalid == 0 {
				firstInvalid = ap
			}
			invalid++
			continue
		}
		ua := &sb.addrs[k]
		if a.Is4() {
			ip4 := a.As4()
			copy(sb.ips[k][:], ip4[:])
			ua.IP = sb.ips[k][:4]
		} else {
			sb.ips[k] = a.As16()
			ua.IP = sb.ips[k][:]
		}
		ua.Port = int(ap.Port())
		ua.Zone = a.Zone()
		sb.bufs[k][0] = b
		sb.dests[k] = ap
		k++
	}
	sb.used = max(sb.used, k)
	return sb.msgs[:k], invalid, firstInvalid
}

// clear drops the batch's references to the caller's datagram, so that a
// pooled batch does not keep it alive.
func (sb *sendBatch) clear() {
	for i := range sb.used {
		sb.bufs[i][0] = nil
		sb.addrs[i].Zone = ""
	}
	sb.used = 0
}

// errNoBatch reports that the system has no sendmmsg after all.
var errNoBatch = errors.New("membership: batched send unsupported")

// SendDatagramTo implements MultiSender: on Linux it sends b to up to 64
// addresses per sendmmsg call, elsewhere (or for a single address) with
// one send per address. A datagram the network drops is not an error (see
// SendDatagram); an invalid address is. NetStats counts the datagrams and
// the system calls.
func (t *NetTransport) SendDatagramTo(addrs []netip.AddrPort, b []byte) error {
	if t.closed.Load() {
		return syncbus.ErrClosed
	}
	var first error
	if len(addrs) <= 1 || t.bw == nil || t.noBatch.Load() {
		err := t.sendEach(addrs, b, &first)
		return firstError(err, first)
	}
	sb := t.sendPool.Get().(*sendBatch)
	err := t.sendBatched(sb, addrs, b, &first)
	sb.clear()
	t.sendPool.Put(sb)
	return firstError(err, first)
}

// firstError returns a fatal error if there is one, else the first
// failure recorded.
func firstError(fatal, first error) error {
	if fatal != nil {
		return fatal
	}
	return first
}

// sendBatched sends b to addrs a batch at a time. It returns
// syncbus.ErrClosed when the transport shut down on the way, after which
// nothing more can be sent; every other failure goes to first.
func (t *NetTransport) sendBatched(sb *sendBatch, addrs []netip.AddrPort, b []byte, first *error) error {
	for len(addrs) > 0 {
		chunk := addrs[:min(len(addrs), sendBatchSize)]
		addrs = addrs[len(chunk):]
		msgs, invalid, bad := sb.fill(chunk, b)
		if invalid > 0 {
			t.sendErrors.Add(uint64(invalid))
			if *first == nil {
				*first = t.sendError(bad, &net.AddrError{Err: "invalid address", Addr: bad.String()})
			}
		}
		sent, err := t.writeBatch(sb, msgs, first)
		switch {
		case err == nil:
		case errors.Is(err, errNoBatch):
			// The rest of this chunk and every later address go out
			// one by one.
			if err := t.sendEach(sb.dests[sent:len(msgs)], b, first); err != nil {
				return err
			}
			return t.sendEach(addrs, b, first)
		default:
			return err
		}
	}
	return nil
}

// writeBatch sends msgs, addressed to sb.dests[:len(msgs)], with as few
// sendmmsg calls as the kernel allows: a call may send fewer messages than
// it was given, and the next one goes on from there. A message that fails
// is counted and skipped, and the rest are still tried. It returns how far
// it got, which is all of msgs unless it fails with syncbus.ErrClosed or
// errNoBatch.
func (t *NetTransport) writeBatch(sb *sendBatch, msgs []ipv4.Message, first *error) (int, error) {
	i, retries := 0, 0
	for i < len(msgs) {
		n, err := t.bw.WriteBatch(msgs[i:], 0)
		t.sendCalls.Add(1)
		if n > 0 {
			t.dataSent.Add(uint64(n))
			i += n
			retries = 0
		}
		if err == nil {
			if n > 0 {
				continue
			}
			// A writer that neither sends nor fails would spin this
			// loop for ever; call it a failure of this message.
			err = io.ErrShortWrite
		}
		if i >= len(msgs) {
			break
		}
		switch {
		case t.closed.Load() || errors.Is(err, net.ErrClosed):
			return i, syncbus.ErrClosed
		case errors.Is(err, syscall.ENOSYS):
			if !t.noBatch.Swap(true) {
				t.log.Log(slog.LevelInfo, "membership: batched UDP sends unsupported; sending one datagram per call", "err", err)
			}
			return i, errNoBatch
		case errors.Is(err, syscall.EINTR) && retries < maxSendRetries:
			retries++ // interrupted before it sent anything: try again
		case isDrop(err):
			t.sendDropped.Add(1)
			i, retries = i+1, 0
		default:
			t.sendErrors.Add(1)
			if *first == nil {
				*first = t.sendError(sb.dests[i], err)
			}
			i, retries = i+1, 0
		}
	}
	return i, nil
}

// sendEach sends b to each address with one system call each.
func (t *NetTransport) sendEach(addrs []netip.AddrPort, b []byte, first *error) error {
	for _, to := range addrs {
		if t.closed.Load() {
			return syncbus.ErrClosed
		}
		if err := t.sendOne(unmapPort(to), b); err != nil {
			if errors.Is(err, syncbus.ErrClosed) {
				return err
			}
			if *first == nil {
				*first = err
			}
		}
	}
	return nil
}

// sendError describes a failed send to one destination the way the
// standard library does, as a *net.OpError naming both ends; the error of a
// batched send names no destination, since a batch has many.
func (t *NetTransport) sendError(to netip.AddrPort, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	var addr net.Addr
	if to.Addr().IsValid() {
		addr = net.UDPAddrFromAddrPort(to)
	}
	return &net.OpError{Op: "write", Net: t.localAddr.Network(), Source: t.localAddr, Addr: addr, Err: err}
}

// isDrop reports whether a send failed only because its datagram is lost
// on the way: the peer's port was unreachable (reported for an earlier
// datagram), no route leads to the peer right now, or the interface's
// queue was full. Datagrams are best effort, so such a loss is counted,
// not reported; the data plane repairs what it loses.
func isDrop(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ECONNREFUSED, syscall.ENOBUFS,
		syscall.EHOSTUNREACH, syscall.EHOSTDOWN,
		syscall.ENETUNREACH, syscall.ENETDOWN:
		return true
	}
	return false
}
