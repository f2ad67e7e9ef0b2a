package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// DefaultPort is the port a node binds when its configuration names none.
const DefaultPort = 7946

// Sizes of the NetTransport.
const (
	// MaxDatagramSize is the largest datagram the transport reads whole.
	MaxDatagramSize = 64 << 10

	// smallDatagramSize is the buffer class for datagrams that fit a
	// usual MTU, which is nearly all of them. Copying such a datagram out
	// of the reader's buffer costs less than pinning 64 KiB per datagram
	// in a queue that may hold a thousand.
	smallDatagramSize = 2 << 10

	defaultQueue        = 1024
	defaultSocketBuffer = 4 << 20

	// defaultReadBatch datagrams per recvmmsg take nearly all of the
	// per-call cost off a burst (BENCHMARKS.md, "membership transport");
	// each slot pins a MaxDatagramSize buffer, so more buys little and
	// costs memory. maxReadBatch bounds what a configuration may ask.
	defaultReadBatch = 32
	maxReadBatch     = 256

	autoBindTries = 10
)

// NetConfig configures a NetTransport.
type NetConfig struct {
	// BindAddr is the IP address to bind; default "0.0.0.0".
	BindAddr string
	// BindPort is the port for both the UDP and the TCP socket: 0 means
	// DefaultPort, -1 lets the operating system choose a port that is free
	// for both.
	BindPort int
	// DatagramQueue is how many data-plane datagrams wait for their reader
	// before new ones are dropped; default 1024.
	DatagramQueue int
	// PacketQueue is how many memberlist packets wait for memberlist
	// before new ones are dropped; default 1024.
	PacketQueue int
	// SocketBuffer is the size asked for the UDP socket's receive and send
	// buffers (SO_RCVBUF, SO_SNDBUF); default 4 MiB. The kernel may grant
	// less (on Linux, at most net.core.rmem_max).
	SocketBuffer int
	// ReadBatch is how many datagrams the reader takes off the UDP socket
	// in one system call where the system can (recvmmsg, on Linux);
	// default 32, at most 256. 1 reads one datagram per call, as other
	// systems always do. Each slot of a batch holds a buffer of
	// MaxDatagramSize bytes for the transport's lifetime.
	ReadBatch int
	// Logger receives the transport's own messages, at a bounded rate;
	// nil discards them.
	Logger *slog.Logger
}

func (c *NetConfig) validate() (netip.Addr, error) {
	if c.BindAddr == "" {
		c.BindAddr = "0.0.0.0"
	}
	ip, err := netip.ParseAddr(c.BindAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: BindAddr %q is not an IP address", ErrConfig, c.BindAddr)
	}
	if ip.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%w: BindAddr %q: zoned addresses are not supported", ErrConfig, c.BindAddr)
	}
	switch {
	case c.BindPort == 0:
		c.BindPort = DefaultPort
	case c.BindPort < -1 || c.BindPort > 65535:
		return netip.Addr{}, fmt.Errorf("%w: BindPort %d out of range", ErrConfig, c.BindPort)
	}
	for _, q := range []struct {
		name string
		v    *int
		def  int
	}{
		{"DatagramQueue", &c.DatagramQueue, defaultQueue},
		{"PacketQueue", &c.PacketQueue, defaultQueue},
		{"SocketBuffer", &c.SocketBuffer, defaultSocketBuffer},
		{"ReadBatch", &c.ReadBatch, defaultReadBatch},
	} {
		switch {
		case *q.v == 0:
			*q.v = q.def
		case *q.v < 0:
			return netip.Addr{}, fmt.Errorf("%w: %s %d is negative", ErrConfig, q.name, *q.v)
		}
	}
	if c.ReadBatch > maxReadBatch {
		return netip.Addr{}, fmt.Errorf("%w: ReadBatch %d is above %d", ErrConfig, c.ReadBatch, maxReadBatch)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return ip.Unmap(), nil
}

// NetStats are a NetTransport's counters since it was created.
type NetStats struct {
	// DatagramsReceived counts datagrams of the data plane read from the
	// socket; DatagramsDropped counts those of them dropped because
	// Datagrams was full.
	DatagramsReceived uint64
	DatagramsDropped  uint64
	// PacketsReceived counts memberlist's datagrams read from the socket;
	// PacketsDropped counts those of them dropped because memberlist was
	// not keeping up.
	PacketsReceived uint64
	PacketsDropped  uint64
	// Empty counts zero-length datagrams, which belong to nobody.
	Empty uint64
	// StreamsAccepted counts TCP connections handed to memberlist.
	StreamsAccepted uint64
	// ReadErrors counts failed socket reads other than the one at shutdown.
	ReadErrors uint64
	// ReadCalls counts the socket reads that returned datagrams. Batched
	// reads take several datagrams per call, so under load it grows more
	// slowly than the datagrams and packets it read.
	ReadCalls uint64

	// DatagramsSent counts data-plane datagrams handed to the network by
	// SendDatagram and SendDatagramTo, one per destination. SendCalls
	// counts the system calls that sent them (and the failed ones): fewer
	// than the datagrams when SendDatagramTo batches.
	DatagramsSent uint64
	SendCalls     uint64
	// SendDropped counts data-plane datagrams the system refused in a way
	// that only means the datagram is lost (see SendDatagram); they are
	// not reported as errors. SendErrors counts those that failed for any
	// other reason; SendDatagramTo returns the first of its failures.
	SendDropped uint64
	SendErrors  uint64
	// PacketsSent counts memberlist's datagrams sent.
	PacketsSent uint64
}

// NetTransport is the Transport on real sockets: one UDP and one TCP socket
// bound to the same port. One goroutine reads the UDP socket, a batch of
// datagrams per system call where the system allows, and splits what it
// reads between the data plane and memberlist; one accepts TCP
// connections for memberlist. Both stop in Shutdown, which also closes every
// TCP connection the transport handed out, so that none of memberlist's
// readers outlives it by a TCP timeout.
//
// A NetTransport is safe for concurrent use.
type NetTransport struct {
	udp  *net.UDPConn
	tcp  *net.TCPListener
	addr netip.AddrPort // as bound; the address may be unspecified

	log   *limitedLog
	hooks netHooks

	// reader is the read loop's alone once the loop started: only the
	// loop replaces it, and tests look at it only when the loop cannot.
	reader datagramReader

	// bw sends batches with sendmmsg; nil where the system has no batched
	// send. noBatch is set once the system turned out not to have it
	// after all, and SendDatagramTo then sends one datagram per call.
	bw        batchWriter
	noBatch   atomic.Bool
	sendPool  sync.Pool // of *sendBatch
	localAddr net.Addr  // for the errors of batched sends

	dataCh   chan *Datagram
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn

	small, large sync.Pool // of *Datagram, by buffer class
	releaseFn    func(*Datagram)

	dialCtx    context.Context // cancelled by Shutdown, ends pending dials
	cancelDial context.CancelFunc
	done       chan struct{}
	closed     atomic.Bool
	closeOnce  sync.Once
	wg         sync.WaitGroup

	connMu sync.Mutex
	conns  map[*trackedConn]struct{} // nil once shut down

	dataReceived, dataDropped       atomic.Uint64
	packetsReceived, packetsDropped atomic.Uint64
	empty, streams, readErrors      atomic.Uint64
	readCalls                       atomic.Uint64
	dataSent, sendCalls             atomic.Uint64
	sendDropped, sendErrors         atomic.Uint64
	packetsSent                     atomic.Uint64
}

// netHooks let this package's tests reach into a NetTransport; the zero
// value is what NewNetTransport uses.
type netHooks struct {
	// pause, when not nil, is called before every read, and the reader
	// waits until the channel it returns is closed: a test queues
	// datagrams on the socket meanwhile, to have the reader find a
	// backlog.
	pause func() <-chan struct{}
	// newReader, when not nil, replaces the batched reader the system
	// offers; returning nil leaves single reads.
	newReader func(c *net.UDPConn, batch int) datagramReader
	// wrapWriter, when not nil, wraps the batched writer, to shorten its
	// batches or inject its errors.
	wrapWriter func(batchWriter) batchWriter
}

var _ Transport = (*NetTransport)(nil)

// NewNetTransport binds the sockets and starts the transport's goroutines.
func NewNetTransport(cfg NetConfig) (*NetTransport, error) {
	return newNetTransport(cfg, netHooks{})
}

func newNetTransport(cfg NetConfig, hooks netHooks) (*NetTransport, error) {
	ip, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	udp, tcp, err := bindPair(ip, cfg.BindPort)
	if err != nil {
		return nil, err
	}
	t := &NetTransport{
		udp:       udp,
		tcp:       tcp,
		addr:      udp.LocalAddr().(*net.UDPAddr).AddrPort(),
		localAddr: udp.LocalAddr(),
		log:       newLimitedLog(cfg.Logger, 5, 10),
		hooks:     hooks,
		dataCh:    make(chan *Datagram, cfg.DatagramQueue),
		packetCh:  make(chan *memberlist.Packet, cfg.PacketQueue),
		streamCh:  make(chan net.Conn),
		done:      make(chan struct{}),
		conns:     make(map[*trackedConn]struct{}),
	}
	// The socket's family decides how batched sends address their peers;
	// an IPv4 socket reports a 4-byte address, a dual-stack one "::".
	t.bw = newBatchWriter(udp, t.addr.Addr().Is4())
	if t.bw != nil && hooks.wrapWriter != nil {
		t.bw = hooks.wrapWriter(t.bw)
	}
	t.sendPool.New = func() any { return newSendBatch() }
	t.reader = t.newReader(cfg.ReadBatch)
	t.addr = netip.AddrPortFrom(t.addr.Addr().Unmap(), t.addr.Port())
	t.small.New = func() any { return &Datagram{buf: make([]byte, smallDatagramSize)} }
	t.large.New = func() any { return &Datagram{buf: make([]byte, MaxDatagramSize)} }
	t.releaseFn = t.recycle
	t.dialCtx, t.cancelDial = context.WithCancel(context.Background())

	// Large buffers absorb bursts while the reader is descheduled; the
	// kernel caps them silently, so a failure here is only worth a note.
	if err := udp.SetReadBuffer(cfg.SocketBuffer); err != nil {
		t.log.Log(slog.LevelDebug, "membership: cannot size the UDP receive buffer", "err", err)
	}
	if err := udp.SetWriteBuffer(cfg.SocketBuffer); err != nil {
		t.log.Log(slog.LevelDebug, "membership: cannot size the UDP send buffer", "err", err)
	}

	t.wg.Add(2)
	go t.readLoop()
	go t.acceptLoop()
	return t, nil
}

// bindPair binds a UDP and a TCP socket on the same port of ip. For port -1
// the UDP socket takes a port the system chooses and the TCP socket follows;
// when TCP's side of that port is taken, it tries another.
func bindPair(ip netip.Addr, port int) (*net.UDPConn, *net.TCPListener, error) {
	udpNet, tcpNet := "udp6", "tcp6"
	switch {
	case ip.Is4():
		udpNet, tcpNet = "udp4", "tcp4"
	case ip.IsUnspecified():
		udpNet, tcpNet = "udp", "tcp" // dual stack
	}
	tries := 1
	if port < 0 {
		tries, port = autoBindTries, 0
	}
	var lastErr error
	for range tries {
		udp, err := net.ListenUDP(udpNet, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
		if err != nil {
			return nil, nil, fmt.Errorf("membership: bind UDP %s: %w", netip.AddrPortFrom(ip, uint16(port)), err)
		}
		bound := udp.LocalAddr().(*net.UDPAddr).AddrPort()
		tcp, err := net.ListenTCP(tcpNet, net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, bound.Port())))
		if err == nil {
			return udp, tcp, nil
		}
		_ = udp.Close()
		lastErr = fmt.Errorf("membership: bind TCP %s: %w", netip.AddrPortFrom(ip, bound.Port()), err)
	}
	return nil, nil, lastErr
}

// Addr returns the address the sockets are bound to. Its IP is the bind
// address, which may be unspecified (0.0.0.0); FinalAdvertiseAddr says
// which address peers are told.
func (t *NetTransport) Addr() netip.AddrPort { return t.addr }

// Stats returns the transport's counters.
func (t *NetTransport) Stats() NetStats {
	return NetStats{
		DatagramsReceived: t.dataReceived.Load(),
		DatagramsDropped:  t.dataDropped.Load(),
		PacketsReceived:   t.packetsReceived.Load(),
		PacketsDropped:    t.packetsDropped.Load(),
		Empty:             t.empty.Load(),
		StreamsAccepted:   t.streams.Load(),
		ReadErrors:        t.readErrors.Load(),
		ReadCalls:         t.readCalls.Load(),
		DatagramsSent:     t.dataSent.Load(),
		SendCalls:         t.sendCalls.Load(),
		SendDropped:       t.sendDropped.Load(),
		SendErrors:        t.sendErrors.Load(),
		PacketsSent:       t.packetsSent.Load(),
	}
}

// readLoop is the only reader of the UDP socket. It reads into buffers of
// its own, a batch of datagrams per call where the system allows, and never
// blocks on a consumer: a datagram whose channel is full is dropped and
// counted, and the rest of its batch goes on to its own channels.
func (t *NetTransport) readLoop() {
	defer t.wg.Done()
	r := t.reader
	backoff := newBackoff(5*time.Millisecond, time.Second)
	for {
		if t.hooks.pause != nil {
			select {
			case <-t.hooks.pause():
			case <-t.done:
				return
			}
		}
		n, err := r.read()
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			if _, single := r.(*singleReader); !single && errors.Is(err, syscall.ENOSYS) {
				// A kernel or sandbox without recvmmsg: it will not
				// appear later, so read one datagram per call from now on.
				t.log.Log(slog.LevelInfo, "membership: batched UDP reads unsupported; reading one datagram per call", "err", err)
				r = newSingleReader(t.udp)
				t.reader = r // and let the batch's buffers go
				continue
			}
			t.readErrors.Add(1)
			t.log.Log(slog.LevelWarn, "membership: UDP read failed", "err", err)
			if !backoff.wait(t.done) {
				return
			}
			continue
		}
		backoff.reset()
		t.readCalls.Add(1)
		for i := range n {
			p, from := r.datagram(i)
			t.dispatch(from, p)
		}
	}
}

// newReader returns the batched reader the system offers for batch
// datagrams per call, or one that reads a datagram per call.
func (t *NetTransport) newReader(batch int) datagramReader {
	if batch > 1 {
		newBatch := newBatchReader
		if t.hooks.newReader != nil {
			newBatch = t.hooks.newReader
		}
		if r := newBatch(t.udp, batch); r != nil {
			return r
		}
	}
	return newSingleReader(t.udp)
}

// dispatch hands one datagram read from the socket to its consumer; p is
// the reader's buffer, so whatever is kept is copied.
func (t *NetTransport) dispatch(from netip.AddrPort, p []byte) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	switch {
	case len(p) == 0:
		t.empty.Add(1)
	case p[0] == wire.Marker:
		t.deliverDatagram(from, p)
	default:
		t.deliverPacket(from, p)
	}
}

func (t *NetTransport) deliverDatagram(from netip.AddrPort, p []byte) {
	t.dataReceived.Add(1)
	var d *Datagram
	if len(p) <= smallDatagramSize {
		d = t.small.Get().(*Datagram)
	} else {
		d = t.large.Get().(*Datagram)
	}
	d.From = from
	d.Data = d.buf[:copy(d.buf, p)]
	d.release = t.releaseFn
	select {
	case t.dataCh <- d:
	default:
		t.dataDropped.Add(1)
		d.Release()
	}
}

// recycle puts a datagram of this transport back in its pool.
func (t *NetTransport) recycle(d *Datagram) {
	if cap(d.buf) == smallDatagramSize {
		t.small.Put(d)
	} else {
		t.large.Put(d)
	}
}

func (t *NetTransport) deliverPacket(from netip.AddrPort, p []byte) {
	t.packetsReceived.Add(1)
	// memberlist keeps the buffer it is given, so it gets its own copy
	// of exactly the datagram's size.
	pkt := &memberlist.Packet{
		Buf:       bytes.Clone(p),
		From:      net.UDPAddrFromAddrPort(from),
		Timestamp: time.Now(),
	}
	select {
	case t.packetCh <- pkt:
	default:
		t.packetsDropped.Add(1)
	}
}

// acceptLoop hands incoming TCP connections to memberlist.
func (t *NetTransport) acceptLoop() {
	defer t.wg.Done()
	backoff := newBackoff(5*time.Millisecond, time.Second)
	for {
		c, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Log(slog.LevelWarn, "membership: TCP accept failed", "err", err)
			if !backoff.wait(t.done) {
				return
			}
			continue
		}
		backoff.reset()
		tc := t.track(c)
		if tc == nil {
			return
		}
		select {
		case t.streamCh <- tc:
			t.streams.Add(1)
		case <-t.done:
			_ = tc.Close()
			return
		}
	}
}

// FinalAdvertiseAddr implements memberlist.Transport. An empty ip means the
// bound address or, when bound to an unspecified address, a private address
// of this host; a port of 0 means the bound port.
func (t *NetTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if port <= 0 {
		port = int(t.addr.Port())
	}
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: advertise address %q is not an IP address", ErrConfig, ip)
		}
		return net.IP(a.Unmap().AsSlice()), port, nil
	}
	a := t.addr.Addr()
	if a.IsUnspecified() {
		var err error
		if a, err = hostAddr(); err != nil {
			return nil, 0, err
		}
	}
	return net.IP(a.AsSlice()), port, nil
}

// WriteTo implements memberlist.Transport.
func (t *NetTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *NetTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	to, err := resolveUDP(a.Addr)
	if err != nil {
		return time.Time{}, err
	}
	if t.closed.Load() {
		return time.Time{}, syncbus.ErrClosed
	}
	if _, err := t.udp.WriteToUDPAddrPort(b, unmapPort(to)); err != nil {
		return time.Time{}, err
	}
	t.packetsSent.Add(1)
	return time.Now(), nil
}

// SendDatagram implements Transport. A send that the system refuses only
// because the datagram is lost on its way (the peer's port was
// unreachable, a route is down, the interface's queue is full) returns nil
// and is counted in NetStats.SendDropped; any other failure is returned.
func (t *NetTransport) SendDatagram(addr netip.AddrPort, b []byte) error {
	if t.closed.Load() {
		return syncbus.ErrClosed
	}
	return t.sendOne(unmapPort(addr), b)
}

// sendOne sends one data-plane datagram with one system call and accounts
// for it.
func (t *NetTransport) sendOne(to netip.AddrPort, b []byte) error {
	_, err := t.udp.WriteToUDPAddrPort(b, to)
	t.sendCalls.Add(1)
	switch {
	case err == nil:
		t.dataSent.Add(1)
		return nil
	case t.closed.Load():
		return syncbus.ErrClosed
	case isDrop(err):
		t.sendDropped.Add(1)
		return nil
	default:
		t.sendErrors.Add(1)
		return err
	}
}

// unmapPort turns an IPv4-mapped IPv6 address into the IPv4 one, which
// every socket family here accepts.
func unmapPort(ap netip.AddrPort) netip.AddrPort {
	if a := ap.Addr(); a.Is4In6() {
		return netip.AddrPortFrom(a.Unmap(), ap.Port())
	}
	return ap
}

// resolveUDP parses "ip:port", resolving a host name only when it must.
func resolveUDP(addr string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap, nil
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return ua.AddrPort(), nil
}

// PacketCh implements memberlist.Transport.
func (t *NetTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// Datagrams implements Transport.
func (t *NetTransport) Datagrams() <-chan *Datagram { return t.dataCh }

// StreamCh implements memberlist.Transport.
func (t *NetTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// DialTimeout implements memberlist.Transport.
func (t *NetTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport. Shutdown
// ends a dial in progress and closes the connections it returned.
func (t *NetTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.closed.Load() {
		return nil, syncbus.ErrClosed
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(t.dialCtx, "tcp", a.Addr)
	if err != nil {
		return nil, err
	}
	tc := t.track(c)
	if tc == nil {
		return nil, syncbus.ErrClosed
	}
	return tc, nil
}

// Shutdown implements memberlist.Transport: it closes the sockets and every
// connection handed out, and returns once the transport's goroutines have
// exited. It is idempotent.
func (t *NetTransport) Shutdown() error {
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		close(t.done)
		t.cancelDial()
		_ = t.udp.Close()
		_ = t.tcp.Close()
		t.connMu.Lock()
		conns := t.conns
		t.conns = nil
		t.connMu.Unlock()
		for c := range conns {
			_ = c.Conn.Close()
		}
		t.wg.Wait()
		t.log.flush()
	})
	return nil
}

// track registers a connection so that Shutdown can close it. It returns
// nil, having closed c, when the transport is shut down already.
func (t *NetTransport) track(c net.Conn) *trackedConn {
	tc := &trackedConn{Conn: c, t: t}
	t.connMu.Lock()
	if t.conns == nil {
		t.connMu.Unlock()
		_ = c.Close()
		return nil
	}
	t.conns[tc] = struct{}{}
	t.connMu.Unlock()
	return tc
}

// trackedConn is a TCP connection of the transport; closing it forgets it.
type trackedConn struct {
	net.Conn
	t *NetTransport
}

// Close closes the connection and stops tracking it.
func (c *trackedConn) Close() error {
	c.t.connMu.Lock()
	if c.t.conns != nil {
		delete(c.t.conns, c)
	}
	c.t.connMu.Unlock()
	return c.Conn.Close()
}
