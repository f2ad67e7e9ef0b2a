package protocol

import (
	"net/netip"
	"time"
)

// A stranger is a node that sent this one a frame while the membership
// does not list its address. Gossip can miss a member for a long while
// (until the next full state exchange, tens of seconds at scale), and
// meanwhile this node's publishes and digests skip it. Hearing from it is
// news of it: the caller is told, once per strangerRepeat, so that it can
// ask the membership to exchange state with that address now.
const (
	// strangerRepeatRounds is, in NakBackoffMax, how long one stranger is
	// not reported again.
	strangerRepeatRounds = 10
	// maxStrangers bounds what is remembered of strangers: with
	// encryption off, anyone can send frames from any address.
	maxStrangers = 256
)

// noteStranger reports from as a stranger if the view does not list it
// and it was not reported lately.
func (c *Core) noteStranger(now time.Time, from netip.AddrPort) {
	if _, known := c.view.byAddr[from]; known || !from.IsValid() {
		return
	}
	repeat := strangerRepeatRounds * c.t.NakBackoffMax
	if last, ok := c.strangers[from]; ok && now.Sub(last) < repeat {
		return
	}
	if len(c.strangers) >= maxStrangers {
		for a, last := range c.strangers {
			if now.Sub(last) >= repeat {
				delete(c.strangers, a)
			}
		}
		if len(c.strangers) >= maxStrangers {
			c.drop("stranger-overflow")
			return
		}
	}
	if c.strangers == nil {
		c.strangers = make(map[netip.AddrPort]time.Time)
	}
	c.strangers[from] = now
	c.rd.Strangers = append(c.rd.Strangers, from)
	c.stats.Strangers++
}

// forgetStrangers drops the strangers the view now lists.
func (c *Core) forgetStrangers() {
	for a := range c.strangers {
		if _, known := c.view.byAddr[a]; known {
			delete(c.strangers, a)
		}
	}
}
