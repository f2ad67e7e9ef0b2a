package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Seed prefixes that ask for DNS discovery, in the convention of
// grafana/dskit: a plain seed is "host:port" (a host name joins every
// address it resolves to); "dns+host:port" says the same explicitly, for
// a Kubernetes headless service; "dnssrv+_service._proto.name" takes the
// hosts and ports from the name's SRV records. Every form is resolved
// again on each rejoin, so a rolling deployment that replaces every pod
// keeps being found.
const (
	seedDNSPrefix = "dns+"
	seedSRVPrefix = "dnssrv+"
)

// maxSRVTargets bounds the SRV records one seed contributes, so that a
// huge (or hostile) answer cannot make a rejoin round resolve and dial
// without end. Rejoining then tries at most maxRejoinTargets of them.
const maxSRVTargets = 64

// seedKind says how a seed is resolved.
type seedKind uint8

const (
	seedHost seedKind = iota // an IP address or a host name, with a port
	seedDNS                  // "dns+host:port": the A and AAAA records of host
	seedSRV                  // "dnssrv+name": the SRV records of name
)

// seed is a parsed entry of Config.Seeds.
type seed struct {
	raw  string
	kind seedKind
	host string // the host, or the SRV name
	port uint16 // 0 for seedSRV: each record has its own
}

// parseSeed parses one entry of Config.Seeds (see splitSeed for the forms).
func parseSeed(s string) (seed, error) {
	host, port, err := splitSeed(s)
	if err != nil {
		return seed{}, err
	}
	sd := seed{raw: s, kind: seedHost, host: host, port: port}
	switch {
	case strings.HasPrefix(s, seedSRVPrefix):
		sd.kind = seedSRV
	case strings.HasPrefix(s, seedDNSPrefix):
		sd.kind = seedDNS
	}
	return sd, nil
}

// validSRVName reports whether name can be asked for SRV records: a DNS
// name of letters, digits, '-', '_' and dots, without empty labels (a
// trailing dot, which makes it absolute, is fine).
func validSRVName(name string) bool {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			default:
				return false
			}
		}
	}
	return true
}

// srvLookupFunc returns the SRV records of name.
type srvLookupFunc func(ctx context.Context, name string) ([]*net.SRV, error)

// systemLookupSRV asks the standard library's resolver for the SRV records
// of name itself (no "_service._proto." is prepended: name has them).
func systemLookupSRV(ctx context.Context, name string) ([]*net.SRV, error) {
	_, srvs, err := net.DefaultResolver.LookupSRV(ctx, "", "", name)
	if len(srvs) > 0 {
		// The resolver returns the valid records along with an error
		// when some records were malformed: use what is usable.
		return srvs, nil
	}
	return nil, err
}

// seedResolver turns seeds into addresses to join.
type seedResolver struct {
	lookup    lookupFunc
	lookupSRV srvLookupFunc
}

// resolve returns the addresses seed stands for now. An error says what
// could not be resolved; addresses resolved before it are returned too.
func (r seedResolver) resolve(ctx context.Context, sd seed) ([]netip.AddrPort, error) {
	if sd.kind != seedSRV {
		return r.hostAddrs(ctx, sd.host, sd.port)
	}
	srvs, err := r.lookupSRV(ctx, sd.host)
	if err != nil {
		return nil, fmt.Errorf("SRV %s: %w", sd.host, err)
	}
	if len(srvs) > maxSRVTargets {
		srvs = srvs[:maxSRVTargets]
	}
	var (
		out  []netip.AddrPort
		errs []error
	)
	for _, rec := range srvs {
		if rec == nil || rec.Port == 0 || rec.Target == "" || rec.Target == "." {
			continue // "." means the service is not available here (RFC 2782)
		}
		addrs, err := r.hostAddrs(ctx, strings.TrimSuffix(rec.Target, "."), rec.Port)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, addrs...)
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("SRV %s: no usable record", sd.host))
	}
	return out, errors.Join(errs...)
}

// hostAddrs resolves host (an IP address needs no lookup) on port.
func (r seedResolver) hostAddrs(ctx context.Context, host string, port uint16) ([]netip.AddrPort, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), port)}, nil
	}
	ips, err := r.lookup(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", host, err)
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		if ip.IsValid() {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), port))
		}
	}
	return out, nil
}
