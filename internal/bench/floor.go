package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// floor is the physical limit of an acknowledged fanout on this machine:
// raw Go UDP, one socket sending to four sockets, each read by its own
// goroutine that replies with an ack at once. No encryption, encoding or
// protocol: the system calls and wake-ups alone.
type floor struct {
	keys   *keySet
	sender *net.UDPConn
	peers  []*net.UDPConn
	addrs  []netip.AddrPort
	recv   []*receiver
	wg     sync.WaitGroup
	out    []byte
	in     []byte
	seq    uint64
	// deadline is the sender's read deadline.
	deadline time.Time
}

// Datagram kinds of the floor: an eventual one, delivered to the
// receiver; an acknowledged one, answered at once.
const (
	floorEventual = 'e'
	floorAck      = 'a'
)

func startFloor(keys *keySet) (*floor, error) {
	listen := func() (*net.UDPConn, error) {
		return net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	}
	f := &floor{keys: keys, out: make([]byte, 64), in: make([]byte, 2048)}
	var err error
	if f.sender, err = listen(); err != nil {
		return nil, err
	}
	for range 4 {
		p, err := listen()
		if err != nil {
			f.close()
			return nil, err
		}
		rc := newReceiver()
		f.peers, f.recv = append(f.peers, p), append(f.recv, rc)
		f.addrs = append(f.addrs, p.LocalAddr().(*net.UDPAddr).AddrPort())
		f.wg.Add(1)
		go f.serve(p, rc)
	}
	return f, nil
}

// serve reads one receiver's socket until it is closed.
func (f *floor) serve(p *net.UDPConn, rc *receiver) {
	defer f.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := p.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n < 9 {
			continue
		}
		switch buf[0] {
		case floorAck: // the ack is the datagram's sequence number
			_, _ = p.WriteToUDPAddrPort(buf[1:9], from)
		case floorEventual:
			rc.deliver(string(buf[9:n]))
		}
	}
}

func (f *floor) info() targetInfo {
	return targetInfo{eventual: "datagram to 4 sockets, until 4 readers have it", await: "datagram to 4 sockets, until 4 acks are back"}
}

func (f *floor) receivers() []*receiver { return f.recv }

func (f *floor) send(kind byte, i int) error {
	f.seq++
	msg := append(f.out[:0], kind)
	msg = binary.BigEndian.AppendUint64(msg, f.seq)
	msg = append(msg, f.keys.bytes(i)...)
	for _, a := range f.addrs {
		if _, err := f.sender.WriteToUDPAddrPort(msg, a); err != nil {
			return err
		}
	}
	return nil
}

func (f *floor) publish(_ context.Context, i int) error { return f.send(floorEventual, i) }

func (f *floor) await(_ context.Context, i int) error {
	if now := time.Now(); now.Add(opTimeout / 2).After(f.deadline) {
		// A deadline far away turns a lost ack into a failure, not a hang;
		// moving it now and then keeps its cost out of the floor.
		f.deadline = now.Add(opTimeout)
		if err := f.sender.SetReadDeadline(f.deadline); err != nil {
			return err
		}
	}
	if err := f.send(floorAck, i); err != nil {
		return err
	}
	for got := 0; got < len(f.addrs); {
		n, _, err := f.sender.ReadFromUDPAddrPort(f.in)
		if err != nil {
			return fmt.Errorf("udp ack: %w", err)
		}
		if n == 8 && binary.BigEndian.Uint64(f.in[:8]) == f.seq {
			got++
		}
	}
	return nil
}

func (f *floor) topology(context.Context, int) error          { return errNotApplicable }
func (f *floor) flood(context.Context, int, int) (int, error) { return 0, errNotApplicable }
func (f *floor) traffic() traffic                             { return traffic{} }
func (f *floor) shrink(context.Context) error                 { return errNotApplicable }
func (f *floor) extraCPU() time.Duration                      { return 0 }

func (f *floor) close() {
	if f.sender != nil {
		_ = f.sender.Close()
	}
	for _, p := range f.peers {
		_ = p.Close() // ends its reader
	}
	f.wg.Wait()
}

func (r *runner) runFloor(ctx context.Context, rep *Report, _ func(string) bool) {
	s := &System{ID: Floor, Name: systemNames[Floor]}
	rep.add(s)
	r.progress("floor: starting 5 UDP sockets")
	f, err := startFloor(r.keys)
	if err != nil {
		s.fail("start", err)
		return
	}
	defer f.close()
	r.measure(ctx, s, f)
}
