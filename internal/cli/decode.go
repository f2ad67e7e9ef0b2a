package cli

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warpmesh/warp/wire"
)

// maxDecodeInput bounds what warp decode reads: a frame is at most
// wire.MaxDatagramSize bytes, which hex or an escaped string makes at most
// four times longer.
const maxDecodeInput = 4*wire.MaxDatagramSize + 1024

type decodeFlags struct {
	keyFile string
	label   string
}

func newDecodeCmd() *cobra.Command {
	f := decodeFlags{}
	cmd := &cobra.Command{
		Use:   "decode [FILE|-]",
		Short: "Decode a captured frame and print what it carries",
		Long: "decode reads one frame of the Warp wire format — as a node sends it on UDP\n" +
			"or a bridge publishes it on NATS, Redis or Kafka — from FILE, or from\n" +
			"standard input when FILE is - or missing, and prints its envelope and its\n" +
			"events (or acks, presence, …), one per line.\n\n" +
			"The input may be the raw bytes, hex, base64, or a string quoted the way\n" +
			"redis-cli prints a message (\"W\\x01\\x00…\"). A sealed frame needs the\n" +
			"cluster's keys (--key-file: one base64 key per line, the first primary,\n" +
			"as warp node reads them) and its label (--label).",
		Example: "  redis-cli --no-raw SUBSCRIBE warp.events   # copy the quoted message\n" +
			"  warp decode --key-file keys.txt --label prod frame.txt",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("decode takes at most one FILE, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "-"
			if len(args) == 1 {
				path = args[0]
			}
			return runDecode(cmd.InOrStdin(), cmd.OutOrStdout(), path, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.keyFile, "key-file", "", "file of base64 keys, one a line, the first primary, to open sealed frames")
	fl.StringVar(&f.label, "label", "", "the cluster label the frame was sealed with")
	return cmd
}

// runDecode does the work of warp decode. Every failure is a usage error
// (exit 2): the input or the flags are wrong.
func runDecode(stdin io.Reader, stdout io.Writer, path string, f decodeFlags) error {
	var in io.Reader = stdin
	name := "standard input"
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return usagef("decode: %v", err)
		}
		defer file.Close()
		in, name = file, path
	}
	data, err := io.ReadAll(io.LimitReader(in, maxDecodeInput+1))
	if err != nil {
		return usagef("decode: reading %s: %v", name, err)
	}
	if len(data) > maxDecodeInput {
		return usagef("decode: %s is larger than %d bytes: not one frame", name, maxDecodeInput)
	}
	frame, format, err := DecodeInput(data)
	if err != nil {
		return usagef("decode: %s: %v", name, err)
	}
	var keys [][]byte
	if f.keyFile != "" {
		// The key file of warp node (keys.go): one base64 key a line.
		if keys, err = readKeyFile(f.keyFile); err != nil {
			return usagef("decode: --key-file: %v", err)
		}
	}
	kr, err := wire.NewKeyring(keys...)
	if err != nil {
		return usagef("decode: --key-file: %v", err)
	}
	body, hdr, err := wire.NewOpener(kr, f.label).Open(nil, frame)
	if err != nil {
		hint := ""
		sealed := len(frame) > 2 && frame[2]&1 != 0 // the envelope's sealed flag
		switch {
		case errors.Is(err, wire.ErrLabel) && sealed && len(keys) == 0:
			hint = " (give the cluster's --label, and its --key-file: the frame is sealed)"
		case errors.Is(err, wire.ErrLabel):
			hint = " (give the cluster's --label)"
		case errors.Is(err, wire.ErrAuth) && len(keys) == 0:
			hint = " (a sealed frame: give the cluster's --key-file)"
		case errors.Is(err, wire.ErrAuth):
			hint = " (not sealed with a key of --key-file)"
		}
		return usagef("decode: %s (%s, %d bytes): %v%s", name, format, len(frame), err, hint)
	}
	w := bufio.NewWriter(stdout)
	fmt.Fprintf(w, "frame: %d bytes (%s), version %d, sealed %v, key id %08x, sender %x, counter %d\n",
		len(frame), format, hdr.Version, hdr.Sealed, hdr.KeyID, hdr.Sender, hdr.Counter)
	if err := printBody(w, body); err != nil {
		return usagef("decode: %s: %v", name, err)
	}
	return w.Flush()
}

// DecodeInput turns what a user captured into the frame's bytes: the raw
// frame (it starts with wire.Marker and the version), hex (with or without
// 0x, spaces or colons), a string quoted as redis-cli prints it, or base64
// (standard or URL alphabet, padded or not). It reports which it found.
func DecodeInput(data []byte) ([]byte, string, error) {
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

// printBody prints a frame body, one line per event, ack or field.
func printBody(w io.Writer, body []byte) error {
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
