package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warpmesh/warp/internal/warptest/frametest"
)

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
	frame := frametest.Events(t, key, "prod")
	keyFile := writeFile(t, "keys", []byte("# the cluster's keys\n"+base64.StdEncoding.EncodeToString(key)+"\n"))
	inputs := map[string][]byte{
		"raw":    frame,
		"hex":    []byte(hex.EncodeToString(frame) + "\n"),
		"base64": []byte(base64.StdEncoding.EncodeToString(frame)),
		"quoted": []byte(frametest.QuoteRedis(frame) + "\n"),
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
	frame := frametest.Events(t, nil, "")
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
	sealed := writeFile(t, "sealed", frametest.Events(t, key, "prod"))
	keyFile := writeFile(t, "keys", []byte(base64.StdEncoding.EncodeToString(key)))
	otherKey := writeFile(t, "other", []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))))
	tampered := frametest.Events(t, key, "prod")
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
