package main

import (
	"golang.org/x/net/dns/dnsmessage"
)

// answer builds the reply to one DNS query: A and AAAA from d.a, SRV from
// d.srv, NXDOMAIN for names it does not know. It returns nil for a packet
// that is not a query it can parse.
func (d *testDNS) answer(query []byte) []byte {
	var p dnsmessage.Parser
	hdr, err := p.Start(query)
	if err != nil || hdr.Response {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := q.Name.String()
	d.mu.Lock()
	d.queries[name]++
	ips, hasA := d.a[name]
	srvs, hasSRV := d.srv[name]
	d.mu.Unlock()

	rh := dnsmessage.Header{ID: hdr.ID, Response: true, Authoritative: true, RecursionDesired: hdr.RecursionDesired}
	if !hasA && !hasSRV {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil
	}
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
	switch q.Type {
	case dnsmessage.TypeA:
		for _, ip := range ips {
			if v4 := ip.To4(); v4 != nil {
				var a dnsmessage.AResource
				copy(a.A[:], v4)
				if b.AResource(rr, a) != nil {
					return nil
				}
			}
		}
	case dnsmessage.TypeAAAA:
		for _, ip := range ips {
			if ip.To4() == nil && len(ip) == 16 {
				var a dnsmessage.AAAAResource
				copy(a.AAAA[:], ip)
				if b.AAAAResource(rr, a) != nil {
					return nil
				}
			}
		}
	case dnsmessage.TypeSRV:
		for _, s := range srvs {
			target, err := dnsmessage.NewName(s.target)
			if err != nil {
				return nil
			}
			if b.SRVResource(rr, dnsmessage.SRVResource{Priority: 1, Weight: 1, Port: s.port, Target: target}) != nil {
				return nil
			}
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
