package protocol

import "time"

// rtt estimates the round trip to one peer and derives a retransmission
// timeout from it, as TCP does (RFC 6298): a smoothed round trip (srtt)
// and its mean deviation (rttvar), each sample moving them by 1/8 and 1/4;
// the timeout is srtt + 4·rttvar, kept between a floor and a ceiling.
// Samples come from exchanges that were not retransmitted (Karn's rule): an
// awaited event and its ack, a repair request and the first repaired event.
//
// A timeout that fires backs the peer's timeout off (doubles it, RFC 6298
// 5.5) until a valid sample comes: otherwise a round trip longer than the
// initial timeout would have every first transmission retransmitted, and
// Karn's rule would then never let a sample through.
type rtt struct {
	srtt, rttvar time.Duration
	samples      int
	backoff      time.Duration // the backed-off timeout; zero when none
}

// observe folds one round-trip sample in.
func (r *rtt) observe(sample time.Duration) {
	sample = max(sample, 0) // a clock step backwards is no round trip

	if r.samples == 0 {
		r.srtt, r.rttvar = sample, sample/2
	} else {
		diff := r.srtt - sample
		if diff < 0 {
			diff = -diff
		}
		r.rttvar += (diff - r.rttvar) / 4
		r.srtt += (sample - r.srtt) / 8
	}
	r.samples++
	r.backoff = 0
}

// expired backs the timeout off after a retransmission timeout fired.
func (r *rtt) expired(initial, floor, ceiling time.Duration) {
	r.backoff = min(2*r.timeout(initial, floor, ceiling), ceiling)
}

// timeout returns the retransmission timeout: initial until a sample
// arrived, then srtt + max(floor, 4·rttvar), at most ceiling. The floor
// bounds the variance term, as RFC 6298's clock granularity does, so that
// a steady round trip with little jitter still leaves room for a late ack.
func (r *rtt) timeout(initial, floor, ceiling time.Duration) time.Duration {
	if r == nil {
		return initial
	}
	t := initial
	if r.samples > 0 {
		t = min(r.srtt+max(floor, 4*r.rttvar), ceiling)
	}
	return max(t, r.backoff)
}

// smoothed returns srtt, or def before the first sample.
func (r *rtt) smoothed(def time.Duration) time.Duration {
	if r == nil || r.samples == 0 {
		return def
	}
	return r.srtt
}
