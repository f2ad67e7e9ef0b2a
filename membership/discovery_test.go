package membership

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

func TestParseSeedForms(t *testing.T) {
	for in, want := range map[string]seed{
		"10.0.0.1:7000":                        {kind: seedHost, host: "10.0.0.1", port: 7000},
		"peers":                                {kind: seedHost, host: "peers", port: DefaultPort},
		"dns+warp.default.svc:7946":            {kind: seedDNS, host: "warp.default.svc", port: 7946},
		"dns+[::1]:9000":                       {kind: seedDNS, host: "::1", port: 9000},
		"dnssrv+_gossip._tcp.warp.default.svc": {kind: seedSRV, host: "_gossip._tcp.warp.default.svc"},
		"dnssrv+_gossip._udp.example.com.":     {kind: seedSRV, host: "_gossip._udp.example.com."},
	} {
		got, err := parseSeed(in)
		want.raw = in
		if err != nil || got != want {
			t.Errorf("parseSeed(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{
		"dns+",                  // nothing after the prefix
		"dns+warp.svc",          // a DNS seed needs its port
		"dns+warp.svc:0",        // and a real one
		"dns+:7946",             // and a host
		"dns+dns+warp.svc:7946", // one prefix
		"dnssrv+",               // no name
		"dnssrv+_x._tcp..svc",   // an empty label
		"dnssrv+_x._tcp.svc:80", // SRV records carry the port
		"dnssrv+a b",            // not a DNS name
		"srv+warp.svc:7946",     // no such prefix
		"dnsnoa+warp.svc:7946",  // nor this one
		"dns+warp.svc:port",
	} {
		if _, err := parseSeed(in); !errors.Is(err, ErrConfig) {
			t.Errorf("parseSeed(%q): %v, want ErrConfig", in, err)
		}
	}
}

func TestConfigAcceptsDiscoverySeeds(t *testing.T) {
	c := Config{Seeds: []string{"dns+warp.default.svc.cluster.local:7946", "dnssrv+_gossip._tcp.warp.default.svc.cluster.local"}}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	c = Config{Seeds: []string{"dns+warp.default.svc.cluster.local"}}
	if err := c.validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("a dns+ seed without port: %v, want ErrConfig", err)
	}
}

// fakeDNS answers A/AAAA and SRV questions from tables a test may change.
type fakeDNS struct {
	mu      sync.Mutex
	hosts   map[string][]netip.Addr
	srv     map[string][]*net.SRV
	lookups atomic.Int64
}

func (f *fakeDNS) lookup(_ context.Context, host string) ([]netip.Addr, error) {
	f.lookups.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.hosts[host]; ok {
		return slices.Clone(a), nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (f *fakeDNS) lookupSRV(_ context.Context, name string) ([]*net.SRV, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.srv[name]; ok {
		return slices.Clone(r), nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (f *fakeDNS) setHost(host string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var a []netip.Addr
	for _, s := range addrs {
		a = append(a, netip.MustParseAddr(s))
	}
	f.hosts[host] = a
}

func TestSeedResolver(t *testing.T) {
	dns := &fakeDNS{
		hosts: map[string][]netip.Addr{},
		srv: map[string][]*net.SRV{
			"_gossip._tcp.warp.svc": {
				{Target: "pod-0.warp.svc.", Port: 7000},
				{Target: "pod-1.warp.svc.", Port: 7001},
				{Target: "10.0.0.9", Port: 7002},
				{Target: "gone.warp.svc.", Port: 7003}, // does not resolve
				{Target: ".", Port: 7004},              // "not here" (RFC 2782)
			},
			"_empty._tcp.warp.svc": {{Target: ".", Port: 1}},
		},
	}
	dns.setHost("warp.svc", "10.0.0.1", "::ffff:10.0.0.2", "fd00::3")
	dns.setHost("pod-0.warp.svc", "10.0.1.1")
	dns.setHost("pod-1.warp.svc", "10.0.1.2", "10.0.1.3")
	r := seedResolver{lookup: dns.lookup, lookupSRV: dns.lookupSRV}
	ctx := context.Background()

	resolve := func(s string) ([]string, error) {
		t.Helper()
		sd, err := parseSeed(s)
		if err != nil {
			t.Fatal(err)
		}
		addrs, err := r.resolve(ctx, sd)
		var out []string
		for _, a := range addrs {
			out = append(out, a.String())
		}
		slices.Sort(out)
		return out, err
	}

	got, err := resolve("dns+warp.svc:7946")
	if want := []string{"10.0.0.1:7946", "10.0.0.2:7946", "[fd00::3]:7946"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("dns+: %v %v, want %v", got, err, want)
	}
	got, err = resolve("dnssrv+_gossip._tcp.warp.svc")
	if want := []string{"10.0.0.9:7002", "10.0.1.1:7000", "10.0.1.2:7001", "10.0.1.3:7001"}; !slices.Equal(got, want) {
		t.Errorf("dnssrv+: %v, want %v", got, want)
	}
	if err == nil {
		t.Error("dnssrv+: a target that does not resolve is not reported")
	}
	if got, err = resolve("dnssrv+_empty._tcp.warp.svc"); err == nil || len(got) != 0 {
		t.Errorf("SRV without usable records: %v %v, want an error", got, err)
	}
	if got, err = resolve("dnssrv+_missing._tcp.warp.svc"); err == nil || len(got) != 0 {
		t.Errorf("missing SRV name: %v %v, want an error", got, err)
	}
	if got, err = resolve("dns+10.9.8.7:1"); err != nil || !slices.Equal(got, []string{"10.9.8.7:1"}) {
		t.Errorf("dns+ with an IP: %v %v", got, err)
	}

	// A huge answer is cut to maxSRVTargets records.
	var many []*net.SRV
	for i := range 3 * maxSRVTargets {
		many = append(many, &net.SRV{Target: "10.1.0." + strconv.Itoa(i%250+1), Port: uint16(1000 + i)})
	}
	dns.mu.Lock()
	dns.srv["_many._tcp.warp.svc"] = many
	dns.mu.Unlock()
	if got, _ = resolve("dnssrv+_many._tcp.warp.svc"); len(got) != maxSRVTargets {
		t.Errorf("%d addresses from %d records, want %d", len(got), len(many), maxSRVTargets)
	}
}

// TestDNSSeedFollowsARollingDeployment checks that a "dns+" seed is
// resolved again on every rejoin: the node behind the name is replaced by
// one at another address, and a node that knew only the name finds it.
func TestDNSSeedFollowsARollingDeployment(t *testing.T) {
	first := startNode(t, testConfig("old-pod"))
	port := first.Local().Addr.Port()
	dns := &fakeDNS{hosts: map[string][]netip.Addr{}}
	dns.setHost("warp.svc", "127.0.0.1")

	cfg := testConfig("client")
	cfg.Seeds = []string{"dns+warp.svc:" + strconv.Itoa(int(port))}
	cfg.lookup = dns.lookup
	client := startNode(t, cfg)
	warptest.Eventually(t, 10*time.Second, func() bool { return sees(client, syncbus.MemberAlive, "old-pod") },
		"the client did not join through the dns+ seed")

	// The old pod goes away and a new one starts at another address on the
	// same port; only DNS knows it.
	c := testConfig("new-pod")
	c.BindAddr, c.BindPort = "127.0.0.2", int(port)
	newPod, err := New(c)
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2:%d: %v", port, err)
	}
	t.Cleanup(func() { _ = newPod.Close() })
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	before := dns.lookups.Load()
	dns.setHost("warp.svc", "127.0.0.2")
	warptest.Eventually(t, 15*time.Second, func() bool { return sees(client, syncbus.MemberAlive, "new-pod") },
		"the client never rejoined through the new DNS answer (lookups %d)", dns.lookups.Load())
	if dns.lookups.Load() == before {
		t.Error("the seed was not resolved again")
	}
}
