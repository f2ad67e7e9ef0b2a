package input

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/warpmesh/warp/wire"
)

// CapturedFrame turns what a user captured into the frame's bytes: the raw
// frame (it starts with wire.Marker and the version), hex (with or without
// 0x, spaces or colons), a string quoted as redis-cli prints it, or base64
// (standard or URL alphabet, padded or not). It reports which it found:
// "raw", "hex", "quoted" or "base64". The frame is not checked: wire's
// Opener does that.
func CapturedFrame(data []byte) (frame []byte, format string, err error) {
	if len(data) >= 2 && data[0] == wire.Marker && data[1] == wire.Version {
		return data, "raw", nil
	}
	text := strings.TrimSpace(string(data))
	if text == "" {
		return nil, "", errors.New("empty input")
	}
	if len(text) >= 2 && text[0] == '"' && text[len(text)-1] == '"' {
		b, err := unquoteRedis(text[1 : len(text)-1])
		if err != nil {
			return nil, "", fmt.Errorf("quoted string: %v", err)
		}
		return b, "quoted", nil
	}
	if h := stripHex(text); h != "" {
		if b, err := hex.DecodeString(h); err == nil {
			return b, "hex", nil
		}
	}
	compact := strings.Join(strings.Fields(text), "")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(compact); err == nil && len(b) > 0 {
			return b, "base64", nil
		}
	}
	return nil, "", errors.New("neither a raw frame, hex, base64 nor a quoted string")
}

// stripHex returns s without a 0x prefix, whitespace and colons when what
// is left is an even number of hex digits, or "".
func stripHex(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':':
		case c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			b.WriteByte(c)
		default:
			return ""
		}
	}
	if b.Len() == 0 || b.Len()%2 != 0 {
		return ""
	}
	return b.String()
}

// unquoteRedis undoes redis-cli's quoting (sdscatrepr): \\ \" \n \r \t
// \a \b and \xHH; every other byte stands for itself.
func unquoteRedis(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(s) {
			return nil, errors.New("ends with a lone backslash")
		}
		switch s[i] {
		case '\\', '"':
			out = append(out, s[i])
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'a':
			out = append(out, '\a')
		case 'b':
			out = append(out, '\b')
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf("truncated \\x escape at byte %d", i)
			}
			v, err := hex.DecodeString(s[i+1 : i+3])
			if err != nil {
				return nil, fmt.Errorf("bad \\x escape at byte %d", i)
			}
			out = append(out, v[0])
			i += 2
		default:
			return nil, fmt.Errorf("unknown escape \\%c at byte %d", s[i], i)
		}
	}
	return out, nil
}

// PrintBody decodes an opened frame body (what wire's Opener returns) and
// prints it to w, one line per event, ack or field. A body of a type this
// build does not know is described in one line, not refused; a body that
// does not decode is an error.
func PrintBody(w io.Writer, body []byte) error {
	typ, err := wire.PeekType(body)
	if err != nil {
		return err
	}
	switch typ {
	case wire.FrameEvents:
		var f wire.Events
		if err := wire.DecodeEvents(body, &f); err != nil {
			return err
		}
		fmt.Fprintf(w, "events: origin %q boot %x zone %q region %q flags %#x, %d events\n",
			f.Origin, f.Boot, f.Zone, f.Region, f.Flags, len(f.Events))
		for _, ev := range f.Events {
			s := ev.ToSync(f.Origin, f.Zone, f.Region)
			fmt.Fprintf(w, "  seq %d %s key %q id %s scope %s origin %q zone %q region %q time %s",
				ev.Seq, decodeOpName(s.Op.String()), s.Key, s.ID, strings.ToLower(strings.TrimPrefix(s.Scope.String(), "Scope")),
				s.Origin, s.Zone, s.Region, s.Time.UTC().Format(time.RFC3339Nano))
			if ev.Flags&wire.EventAckWanted != 0 {
				fmt.Fprint(w, " ack-wanted")
			}
			if ev.Flags&wire.EventRelayed != 0 {
				fmt.Fprint(w, " relayed")
			}
			if len(s.VectorClock) > 0 {
				fmt.Fprintf(w, " vector-clock %v", s.VectorClock)
			}
			fmt.Fprintln(w)
		}
	case wire.FrameAcks:
		var f wire.Acks
		if err := wire.DecodeAcks(body, &f); err != nil {
			return err
		}
		fmt.Fprintf(w, "acks: of origin %q boot %x\n", f.Origin, f.Boot)
		for _, a := range f.Acks {
			fmt.Fprintf(w, "  node %q boot %x seqs %v\n", a.Node, a.Boot, a.Seqs)
		}
	case wire.FramePresence:
		var f wire.Presence
		if err := wire.DecodePresence(body, &f); err != nil {
			return err
		}
		fmt.Fprintf(w, "presence: node %q zone %q region %q boot %x interval %v leaving %v\n",
			f.Node, f.Zone, f.Region, f.Boot, f.Interval, f.Leaving)
	case wire.FrameDigest:
		var f wire.Digest
		if err := wire.DecodeDigest(body, &f); err != nil {
			return err
		}
		fmt.Fprintf(w, "digest: origin %q boot %x seq %d start %d\n", f.Origin, f.Boot, f.Seq, f.Start)
	case wire.FrameRepairRequest:
		var f wire.RepairRequest
		if err := wire.DecodeRepairRequest(body, &f); err != nil {
			return err
		}
		fmt.Fprintf(w, "repair request: origin %q boot %x ranges %v\n", f.Origin, f.Boot, f.Ranges)
	case wire.FrameUnavailable:
		var f wire.Unavailable
		if err := wire.DecodeUnavailable(body, &f); err != nil {
			return err
		}
		fmt.Fprintf(w, "unavailable: origin %q boot %x ranges %v\n", f.Origin, f.Boot, f.Ranges)
	case wire.FrameCredit:
		var f wire.Credit
		if err := wire.DecodeCredit(body, &f); err != nil {
			return err
		}
		fmt.Fprintf(w, "credit: origin %q boot %x node %q node boot %x limit %d\n", f.Origin, f.Boot, f.Node, f.NodeBoot, f.Limit)
	default:
		fmt.Fprintf(w, "%v frame: %d bytes of body this build does not decode\n", typ, len(body))
	}
	return nil
}

// decodeOpName turns "OpInvalidate" into "invalidate".
func decodeOpName(s string) string {
	return strings.ToLower(strings.TrimPrefix(s, "Op"))
}
