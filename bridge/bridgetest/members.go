package bridgetest

import (
	"context"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// MembersBus is what WaitMembers needs of a bus.
type MembersBus interface {
	Name() string
	WaitForMembers(ctx context.Context, n int) error
	Members() []syncbus.Member
}

// WaitMembers waits, at most timeout in all, until every bus of buses
// knows all len(buses) of them, failing t with the members the first
// bus that does not has heard of.
func WaitMembers[B MembersBus](t testing.TB, timeout time.Duration, buses []B) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, b := range buses {
		if err := b.WaitForMembers(ctx, len(buses)); err != nil {
			t.Fatalf("%s: WaitForMembers(%d): %v (members %v)", b.Name(), len(buses), err, b.Members())
		}
	}
}
