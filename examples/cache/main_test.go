package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/warpmesh/warp/membership/membershiptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, membershiptest.LeakOptions()...) }

func TestExampleRuns(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		`svc-2: "Ada Lovelace" (miss), then "Ada Lovelace" (hit)`,
		`svc-3 now reads "Ada King" (miss)`,
		`fenced loads: 1`,
		`svc-2 next reads "Ada, Countess of Lovelace" (miss)`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
