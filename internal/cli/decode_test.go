package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// testFrame seals an Events frame of two events with key and label.
func testFrame(t testing.TB, key []byte, label string) []byte {
	t.Helper()
	var keys [][]byte
	if key != nil {
		keys = append(keys, key)
	}
	kr, err := wire.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	ids := syncbus.NewIDGenerator()
	f := &wire.Events{Origin: "node-a", Boot: 7, Zone: "eu-1a", Region: "eu", Events: []wire.Event{
		{Seq: 1, ID: ids.Next(), Key: "user:42", Op: syncbus.OpInvalidate, Time: time.Now().UnixNano()},
		{Seq: 2, ID: ids.Next(), Key: "lease-9", Op: syncbus.OpLeaseRevoke, Flags: wire.EventAckWanted, Time: time.Now().UnixNano()},
	}}
	body, err := wire.AppendEvents(nil, f, true)
	if err != nil {
		t.Fatal(err)
	}
	frame, err := wire.NewSealer(kr, label).Seal(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	return frame
}

// quoteRedis quotes b as redis-cli prints a binary string.
func quoteRedis(b []byte) string {
	var s strings.Builder
	s.WriteByte('"')
	for _, c := range b {
		switch {
		case c == '\\' || c == '"':
			s.WriteByte('\\')
			s.WriteByte(c)
		case c == '\n':
			s.WriteString(`\n`)
		case c == '\r':
			s.WriteString(`\r`)
		case c == '\t':
			s.WriteString(`\t`)
		case c == '\a':
			s.WriteString(`\a`)
		case c == '\b':
			s.WriteString(`\b`)
		case c >= 0x20 && c < 0x7f:
			s.WriteByte(c)
		default:
			fmt.Fprintf(&s, `\x%02x`, c)
		}
	}
	s.WriteByte('"')
	return s.String()
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDecodeFormats: a sealed frame decodes from each input format, with
// the cluster's key file and label, printing every event.
func TestDecodeFormats(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	frame := testFrame(t, key, "prod")
	keyFile := writeFile(t, "keys", []byte("# the cluster's keys\n"+base64.StdEncoding.EncodeToString(key)+"\n"))
	inputs := map[string][]byte{
		"raw":    frame,
		"hex":    []byte(hex.EncodeToString(frame) + "\n"),
		"base64": []byte(base64.StdEncoding.EncodeToString(frame)),
		"quoted": []byte(quoteRedis(frame) + "\n"),
	}
	for format, in := range inputs {
		code, out, errOut := runCLI(t, nil, "decode", "--key-file", keyFile, "--label", "prod", writeFile(t, format, in))
		if code != ExitOK {
			t.Errorf("%s: exit %d: %s", format, code, errOut)
			continue
		}
		for _, want := range []string{"(" + format + ")", "sealed true", `origin "node-a"`, `invalidate key "user:42"`, `leaserevoke key "lease-9"`, "ack-wanted", "2 events"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", format, want, out)
			}
		}
	}
}

// TestDecodeStdin: "-" (or no FILE) reads standard input.
func TestDecodeStdin(t *testing.T) {
	frame := testFrame(t, nil, "")
	var out bytes.Buffer
	if err := runDecode(strings.NewReader(hex.EncodeToString(frame)), &out, "-", decodeFlags{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `key "user:42"`) || !strings.Contains(out.String(), "sealed false") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestDecodeBadInput: every bad input or flag exits 2 with one line that
// says what is wrong.
func TestDecodeBadInput(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	sealed := writeFile(t, "sealed", testFrame(t, key, "prod"))
	keyFile := writeFile(t, "keys", []byte(base64.StdEncoding.EncodeToString(key)))
	otherKey := writeFile(t, "other", []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))))
	tampered := testFrame(t, key, "prod")
	tampered[len(tampered)-3] ^= 0xff
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"decode", writeFile(t, "garbage", []byte("%%% not a frame %%%"))}, "neither"},
		{[]string{"decode", writeFile(t, "empty", nil)}, "empty"},
		{[]string{"decode", writeFile(t, "short", []byte("5701"))}, "truncated"},
		{[]string{"decode", filepath.Join(t.TempDir(), "missing")}, "no such file"},
		{[]string{"decode", sealed}, "--key-file"},
		{[]string{"decode", "--key-file", keyFile, sealed}, "--label"},
		{[]string{"decode", "--key-file", otherKey, "--label", "prod", sealed}, "not sealed with a key"},
		{[]string{"decode", "--key-file", keyFile, "--label", "prod", writeFile(t, "tampered", tampered)}, "authentication"},
		{[]string{"decode", "--key-file", writeFile(t, "badkeys", []byte("!!!")), sealed}, "key-file"},
		{[]string{"decode", "--key-file", writeFile(t, "shortkey", []byte("AAAA")), sealed}, "key"},
		{[]string{"decode", writeFile(t, "badquote", []byte(`"W\x0"`))}, "escape"},
		{[]string{"decode", writeFile(t, "huge", bytes.Repeat([]byte("a"), maxDecodeInput+10))}, "larger"},
		{[]string{"decode", "a", "b"}, "at most one"},
		{[]string{"decode", "--no-such-flag"}, "unknown flag"},
	}
	for _, c := range cases {
		code, _, errOut := runCLI(t, nil, c.args...)
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args[1:], code, ExitUsage, errOut)
		}
		if strings.Count(strings.TrimRight(errOut, "\n"), "\n") != 0 || !strings.HasPrefix(errOut, "warp: ") || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: want one line starting with \"warp: \" mentioning %q, got %q", c.args[1:], c.want, errOut)
		}
	}
}
