package membership_test

import (
	"fmt"
	"log"
	"time"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/wire"
)

// Two nodes form a cluster: the second joins the first, and each learns
// where the other runs.
func Example() {
	first, err := membership.New(membership.Config{
		Name: "first", BindAddr: "127.0.0.1", BindPort: -1,
		Zone: "eu-west-1a", Region: "eu-west-1", Profile: membership.ProfileLocal,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer first.Close()

	second, err := membership.New(membership.Config{
		Name: "second", BindAddr: "127.0.0.1", BindPort: -1,
		Zone: "eu-west-1b", Region: "eu-west-1", Profile: membership.ProfileLocal,
		Seeds: []string{first.Local().Addr.String()},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer second.Close()

	// Each node reports the other's join.
	timeout := time.After(10 * time.Second)
	for _, m := range []*membership.Membership{first, second} {
		select {
		case ev := <-m.Events():
			fmt.Println(m.Name(), "sees", ev.Kind, ev.Node.Name, "in", ev.Node.Zone)
		case <-timeout:
			fmt.Println("no join")
			return
		}
	}
	n, _ := second.Snapshot().Lookup("first")
	fmt.Println(n.Name, n.State, n.Addr == first.Local().Addr)
	// Output:
	// first sees Join second in eu-west-1b
	// second sees Join first in eu-west-1a
	// first MemberAlive true
}

// A cluster with gossip encryption: memberlist seals its packets with keys
// derived from the keyring, and follows the keyring as it rotates.
func ExampleConfig_keyring() {
	key := make([]byte, 32) // in production: 32 random bytes from a secret store
	kr, err := wire.NewKeyring(key)
	if err != nil {
		log.Fatal(err)
	}
	m, err := membership.New(membership.Config{
		Name: "node", BindAddr: "127.0.0.1", BindPort: -1,
		Keyring: kr, Label: "prod-eu", Profile: membership.ProfileLocal,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	fmt.Println(len(m.Snapshot().Nodes), "node, encrypted")
	// Output: 1 node, encrypted
}

// The transport carries memberlist's packets and the data plane's frames on
// one port; frames, which start with wire.Marker, come out of Datagrams.
func ExampleNetTransport() {
	a, err := membership.NewNetTransport(membership.NetConfig{BindAddr: "127.0.0.1", BindPort: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Shutdown()
	b, err := membership.NewNetTransport(membership.NetConfig{BindAddr: "127.0.0.1", BindPort: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Shutdown()

	if err := a.SendDatagram(b.Addr(), []byte{wire.Marker, 'h', 'i'}); err != nil {
		log.Fatal(err)
	}
	select {
	case d := <-b.Datagrams():
		fmt.Printf("%q from a: %v\n", d.Data[1:], d.From == a.Addr())
		d.Release() // Data is borrowed until here
	case <-time.After(5 * time.Second):
		fmt.Println("lost")
	}
	// Output: "hi" from a: true
}
