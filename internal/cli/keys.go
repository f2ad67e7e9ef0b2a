package cli

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newKeygenCmd) }

// Limits of a key file: more than this is not a key file.
const (
	maxKeyFileBytes = 64 << 10
	maxKeys         = 64
)

// readKeyFile reads a key file: one base64 key (16, 24 or 32 bytes) per
// line, the first one primary. Blank lines and lines starting with '#' are
// ignored, so that an operator can annotate a rotation in progress.
func readKeyFile(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("key file %s: larger than %d bytes", path, maxKeyFileBytes)
	}
	keys, err := parseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return keys, nil
}

// parseKeys parses the contents of a key file (see readKeyFile).
func parseKeys(data []byte) ([][]byte, error) {
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxKeyFileBytes)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			// Accept keys written without padding too.
			if k, err2 := base64.RawStdEncoding.DecodeString(text); err2 == nil {
				key, err = k, nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: not base64", line)
		}
		switch len(key) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("line %d: a key of %d bytes; want 16, 24 or 32", line, len(key))
		}
		if slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, key) }) {
			return nil, fmt.Errorf("line %d: the same key twice", line)
		}
		if len(keys) == maxKeys {
			return nil, fmt.Errorf("more than %d keys", maxKeys)
		}
		keys = append(keys, key)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no key in it")
	}
	return keys, nil
}

// keyID names a key in logs without revealing it: the first bytes of its
// SHA-256.
func keyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// keyIDs names keys for a log line.
func keyIDs(keys [][]byte) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = keyID(k)
	}
	return out
}

// keyring is what a node needs to change its keys at run time (a MeshBus).
type keyring interface {
	AddKey(key []byte) error
	UseKey(key []byte) error
	RemoveKey(key []byte) error
}

// rotateKeys moves a node from the keys it has to the keys wanted: it adds
// the new keys, makes wanted[0] primary, then removes the keys no longer
// listed — in that order, so that the node never stops accepting a key
// that another node may still send with. It returns the keys the node has
// afterwards, which on error may be a mix of both.
func rotateKeys(kr keyring, have, wanted [][]byte) ([][]byte, error) {
	has := func(set [][]byte, k []byte) bool {
		return slices.ContainsFunc(set, func(x []byte) bool { return bytes.Equal(x, k) })
	}
	now := slices.Clone(have)
	primaryBefore := len(now) > 0
	for _, k := range wanted {
		if has(now, k) {
			continue
		}
		if err := kr.AddKey(k); err != nil {
			return now, fmt.Errorf("add key %s: %w", keyID(k), err)
		}
		now = append(now, k)
	}
	// A node that started without keys has none primary yet: name one.
	if !primaryBefore || !bytes.Equal(now[0], wanted[0]) {
		if err := kr.UseKey(wanted[0]); err != nil {
			return now, fmt.Errorf("make key %s primary: %w", keyID(wanted[0]), err)
		}
		i := slices.IndexFunc(now, func(x []byte) bool { return bytes.Equal(x, wanted[0]) })
		now[0], now[i] = now[i], now[0]
	}
	for _, k := range slices.Clone(now) {
		if has(wanted, k) {
			continue
		}
		if err := kr.RemoveKey(k); err != nil {
			return now, fmt.Errorf("remove key %s: %w", keyID(k), err)
		}
		now = slices.DeleteFunc(now, func(x []byte) bool { return bytes.Equal(x, k) })
	}
	return now, nil
}

func newKeygenCmd() *cobra.Command {
	var size int
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Print a new random key in the key-file format",
		Long: "keygen prints a new random secret key, base64 on one line: the format of\n" +
			"the file that warp node --key-file reads (one key per line, the first one\n" +
			"primary). Start a cluster with:  warp keygen > warp.key\n\n" +
			"To rotate keys on a live cluster, with a SIGHUP to every node after each\n" +
			"step: add the new key as the second line; move it to the first line; delete\n" +
			"the old line.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch size {
			case 16, 24, 32:
			default:
				return usagef("--size %d: want 16, 24 or 32", size)
			}
			key := make([]byte, size)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), base64.StdEncoding.EncodeToString(key))
			return err
		},
	}
	cmd.Flags().IntVar(&size, "size", 32, "key size in bytes: 16, 24 or 32")
	return cmd
}
