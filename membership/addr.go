package membership

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// hostAddr picks the address to advertise for a node bound to an
// unspecified address: the first private IPv4 address of an interface that
// is up, else its first global unicast IPv4 address, else the same for
// IPv6. Loopback addresses never qualify: a peer could not use them.
func hostAddr() (netip.Addr, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("membership: list interfaces: %w", err)
	}
	var candidates []netip.Addr
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				candidates = append(candidates, ip.Unmap())
			}
		}
	}
	if a, ok := pickAdvertise(candidates); ok {
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("%w: bound to an unspecified address and no interface address to advertise; set AdvertiseAddr", ErrConfig)
}

// pickAdvertise chooses among interface addresses by the order hostAddr
// documents.
func pickAdvertise(addrs []netip.Addr) (netip.Addr, bool) {
	rank := func(a netip.Addr) int {
		switch {
		case !a.IsGlobalUnicast() || a.IsLoopback():
			return 0 // link-local, loopback, multicast: unusable
		case a.Is4() && a.IsPrivate():
			return 4
		case a.Is4():
			return 3
		case a.IsPrivate():
			return 2
		default:
			return 1
		}
	}
	var best netip.Addr
	bestRank := 0
	for _, a := range addrs {
		if r := rank(a); r > bestRank {
			best, bestRank = a, r
		}
	}
	return best, bestRank > 0
}

// backoff spaces out retries of a failing operation in a loop that must
// still stop promptly.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) backoff { return backoff{min: min, max: max} }

func (b *backoff) reset() { b.cur = 0 }

// wait sleeps for the next delay, or less if done closes first; it reports
// false when done closed.
func (b *backoff) wait(done <-chan struct{}) bool {
	switch {
	case b.cur == 0:
		b.cur = b.min
	case b.cur < b.max:
		b.cur = min(2*b.cur, b.max)
	}
	t := time.NewTimer(b.cur)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}
