package sim

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warpmesh/warp/internal/faults"
)

// Errors of simulated streams.
var (
	// ErrRefused is what dialling a host that is down, or across a cut,
	// returns.
	ErrRefused = errors.New("sim: connection refused")
	errReset   = errors.New("sim: connection reset")
)

// stream is one of memberlist's TCP connections: two ends, each with
// what the other wrote, arriving after the link's latency.
type stream struct {
	net      *Network
	from, to *Host        // the dialler's host and the listener's
	eps      [2]*Endpoint // the dialler's endpoint and the listener's
	ends     [2]*streamConn
	// gate, while a cluster starts, steers the stream (bootGate):
	// pushOnly swallows the listener's writes and ends the dialler's
	// reads at the first of them; counted streams hold a place at the
	// hub until they end.
	gate     *bootGate
	counted  bool
	pushOnly bool
	answered sync.Once
	ended    sync.Once
	closed   atomic.Int32 // ends closed
}

// streamConn is one end of a stream: a net.Conn.
type streamConn struct {
	s      *stream
	side   int // 0: the dialler's end, 1: the listener's
	in     half
	local  net.Addr
	remote net.Addr
	closed atomic.Bool
}

// half is the bytes one end reads, in arrival order.
type half struct {
	mu       sync.Mutex
	chunks   []chunk
	last     time.Time // arrival of the latest chunk
	eof      bool      // the writer closed: io.EOF once chunks are read
	err      error     // reads fail with err at once
	deadline time.Time
	notify   chan struct{} // one slot: something changed
}

type chunk struct {
	b  []byte
	at time.Time
}

var portSeq atomic.Uint32

func newStream(n *Network, from, to *Host) *stream {
	s := &stream{net: n, from: from, to: to}
	ephemeral := int(32768 + portSeq.Add(1)%28000)
	dialer := &net.TCPAddr{IP: from.udpAddr.IP, Port: ephemeral}
	listener := &net.TCPAddr{IP: to.udpAddr.IP, Port: int(to.addr.Port())}
	s.ends[0] = &streamConn{s: s, side: 0, local: dialer, remote: listener}
	s.ends[1] = &streamConn{s: s, side: 1, local: listener, remote: dialer}
	for _, e := range s.ends {
		e.in.notify = make(chan struct{}, 1)
	}
	return s
}

// dial opens a stream from ep to the host at to, after one round trip of
// the link (and a rule's delay), unless the host is down, a rule drops it
// or the endpoint stops meanwhile.
func (n *Network) dial(ep *Endpoint, to netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	from := ep.host
	dst := n.HostAt(to)
	if dst == nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(to), Err: ErrRefused}
	}
	var extra time.Duration
	if n.rules.Len() > 0 {
		v := n.rules.Judge(faults.Packet{From: from.addr, To: dst.addr, Kind: KindStream})
		if v.Drop {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(to), Err: ErrRefused}
		}
		extra = v.Delay
	}
	rtt := n.latency(from, dst) + n.latency(dst, from) + extra
	if wait := n.Wall(rtt); wait > 0 {
		if timeout > 0 && wait >= timeout {
			wait = timeout
		}
		t := time.NewTimer(wait) // the handshake's round trip, not synchronisation
		select {
		case <-t.C:
		case <-ep.done:
			t.Stop()
			return nil, ErrClosed
		}
		if timeout > 0 && n.Wall(rtt) >= timeout {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(to), Err: os.ErrDeadlineExceeded}
		}
	}
	s := newStream(n, from, dst)
	s.eps[0] = ep
	if g := n.boot.Load(); g != nil {
		ok, counted, pushOnly := g.admit(from, dst, ep.done, max(timeout, time.Second))
		if !ok {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(to), Err: ErrRefused}
		}
		s.gate, s.counted, s.pushOnly = g, counted, pushOnly
	}
	dst.mu.Lock()
	dep := dst.ep
	dst.mu.Unlock()
	if dep == nil {
		s.end()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(to), Err: ErrRefused}
	}
	s.eps[1] = dep
	if !n.register(s) {
		s.end()
		return nil, ErrClosed
	}
	n.stats.streams.Add(1)
	dst.mu.Lock()
	if dst.paused && dst.ep == dep {
		// A paused host's kernel completes the handshake; the
		// process serves the stream once it resumes.
		dst.waiting = append(dst.waiting, s.ends[1])
		dst.mu.Unlock()
		return s.ends[0], nil
	}
	dst.mu.Unlock()
	if !dep.accept(s.ends[1]) {
		s.reset(errReset)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(to), Err: ErrRefused}
	}
	return s.ends[0], nil
}

// latency is the current one-way latency from a to b.
func (n *Network) latency(a, b *Host) time.Duration {
	zl := n.link(a.zone, b.zone)
	zl.mu.Lock()
	defer zl.mu.Unlock()
	return zl.cfg.Latency
}

// register records a stream, so that a partition or a crash can break it.
func (n *Network) register(s *stream) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.streams[s] = struct{}{}
	return true
}

// end forgets a stream that is over, and gives its place at a hub back.
func (s *stream) end() {
	s.ended.Do(func() {
		s.net.mu.Lock()
		delete(s.net.streams, s)
		s.net.mu.Unlock()
		if s.counted {
			s.gate.release(s.to)
		}
	})
}

// resetStreams breaks every stream that pred selects.
func (n *Network) resetStreams(pred func(*stream) bool) {
	n.mu.Lock()
	var hit []*stream
	for s := range n.streams {
		if pred(s) {
			hit = append(hit, s)
		}
	}
	n.mu.Unlock()
	for _, s := range hit {
		s.reset(errReset)
	}
}

// reset breaks both ends: reads and writes fail with err from now on.
func (s *stream) reset(err error) {
	for _, e := range s.ends {
		e.in.fail(err)
	}
	s.end()
}

func (h *half) signal() {
	select {
	case h.notify <- struct{}{}:
	default:
	}
}

func (h *half) fail(err error) {
	h.mu.Lock()
	if h.err == nil {
		h.err = err
		h.chunks = nil
	}
	h.mu.Unlock()
	h.signal()
}

func (h *half) push(b []byte, at time.Time) {
	h.mu.Lock()
	if at.Before(h.last) {
		at = h.last // a stream delivers in order
	}
	h.last = at
	h.chunks = append(h.chunks, chunk{b: b, at: at})
	h.mu.Unlock()
	h.signal()
}

func (h *half) close() {
	h.mu.Lock()
	h.eof = true
	h.mu.Unlock()
	h.signal()
}

func (h *half) read(p []byte) (int, error) {
	for {
		now := time.Now()
		h.mu.Lock()
		if h.err != nil {
			err := h.err
			h.mu.Unlock()
			return 0, err
		}
		var wake time.Time
		if len(h.chunks) > 0 {
			c := &h.chunks[0]
			if !c.at.After(now) {
				k := copy(p, c.b)
				c.b = c.b[k:]
				if len(c.b) == 0 {
					h.chunks[0] = chunk{}
					h.chunks = h.chunks[1:]
				}
				h.mu.Unlock()
				return k, nil
			}
			wake = c.at
		} else if h.eof {
			h.mu.Unlock()
			return 0, io.EOF
		}
		dl := h.deadline
		if !dl.IsZero() {
			if !now.Before(dl) {
				h.mu.Unlock()
				return 0, os.ErrDeadlineExceeded
			}
			if wake.IsZero() || dl.Before(wake) {
				wake = dl
			}
		}
		h.mu.Unlock()
		if wake.IsZero() {
			<-h.notify
			continue
		}
		t := time.NewTimer(wake.Sub(now)) // the next arrival or the deadline
		select {
		case <-h.notify:
		case <-t.C:
		}
		t.Stop()
	}
}

// Read implements net.Conn.
func (c *streamConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return c.in.read(p)
}

// Write implements net.Conn. Writes never block: the link takes the bytes
// and they arrive after its latency.
func (c *streamConn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	peer := c.s.ends[1-c.side]
	c.in.mu.Lock()
	err := c.in.err
	c.in.mu.Unlock()
	if err != nil {
		return 0, err
	}
	from, to := c.s.from, c.s.to
	if c.side == 1 {
		from, to = to, from
	}
	n := c.s.net
	if n.partitioned(from, to) {
		c.s.reset(errReset)
		return 0, errReset
	}
	n.stats.streamBytes.Add(uint64(len(p)))
	if c.s.counted && c.side == 1 {
		c.s.answered.Do(func() { c.s.gate.answered(c.s.from, c.s.to, c.s.pushOnly) })
	}
	if c.s.pushOnly && c.side == 1 {
		// The listener's answer is swallowed and the dialler sees the
		// connection end: it has pushed its state without pulling any.
		peer.in.fail(io.ErrUnexpectedEOF)
		return len(p), nil
	}
	peer.in.push(slices.Clone(p), time.Now().Add(n.Wall(n.latency(from, to))))
	return len(p), nil
}

// Close implements net.Conn: this end's reads fail, the other end reads
// what was written and then io.EOF.
func (c *streamConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.in.fail(net.ErrClosed)
	c.s.ends[1-c.side].in.close()
	if c.s.closed.Add(1) == 2 {
		c.s.end()
	}
	return nil
}

// LocalAddr implements net.Conn.
func (c *streamConn) LocalAddr() net.Addr { return c.local }

// RemoteAddr implements net.Conn.
func (c *streamConn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline implements net.Conn.
func (c *streamConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.Conn.
func (c *streamConn) SetReadDeadline(t time.Time) error {
	c.in.mu.Lock()
	c.in.deadline = t
	c.in.mu.Unlock()
	c.in.signal()
	return nil
}

// SetWriteDeadline implements net.Conn; writes never block, so it has
// nothing to bound.
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }
