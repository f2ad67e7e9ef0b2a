package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/warpmesh/warp/internal/input"
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
	frame, format, err := input.CapturedFrame(data)
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
	if err := input.PrintBody(w, body); err != nil {
		return usagef("decode: %s: %v", name, err)
	}
	return w.Flush()
}
