package protocol

import "time"

// rtt estimates the round trip to one peer and derives a retransmission
// timeout from it, as TCP does (RFC 6298): a smoothed round trip (srtt)
// and its mean deviation (rttvar), each sample moving them by 1/8 and 1/4;
// the timeout is srtt + 4·rttvar, kept between a floor and a ceiling.
// Samples come from exchanges that were not retransmitted (Karn's rule): an
// awaited event and its ack, a repair request and the first repaired event.
type rtt struct {
	srtt, rttvar time.Duration
	samples      int
}

// observe folds one round-trip sample in.
func (r *rtt) observe(sample time.Duration) {
	if sample <= 0 {
		sample = time.Microsecond
	}
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
}

// timeout returns the retransmission timeout: initial until a sample
// arrived, then srtt + 4·rttvar within [floor, ceiling].
func (r *rtt) timeout(initial, floor, ceiling time.Duration) time.Duration {
	if r == nil || r.samples == 0 {
		return initial
	}
	return min(max(r.srtt+4*r.rttvar, floor), ceiling)
}

// smoothed returns srtt, or def before the first sample.
func (r *rtt) smoothed(def time.Duration) time.Duration {
	if r == nil || r.samples == 0 {
		return def
	}
	return r.srtt
}
