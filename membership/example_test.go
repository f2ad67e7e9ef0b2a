package membership_test

import (
	"errors"
	"fmt"
	"log"
	"net/netip"
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

// A frame sealed once goes to several peers in one call where the transport
// can batch; other transports get one SendDatagram per peer.
func ExampleMultiSender() {
	sender, err := membership.NewNetTransport(membership.NetConfig{BindAddr: "127.0.0.1", BindPort: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer sender.Shutdown()
	var peers []*membership.NetTransport
	var addrs []netip.AddrPort
	for range 3 {
		p, err := membership.NewNetTransport(membership.NetConfig{BindAddr: "127.0.0.1", BindPort: -1})
		if err != nil {
			log.Fatal(err)
		}
		defer p.Shutdown()
		peers = append(peers, p)
		addrs = append(addrs, p.Addr())
	}

	frame := []byte{wire.Marker, 'e', 'v'}
	var tr membership.Transport = sender
	if ms, ok := tr.(membership.MultiSender); ok {
		err = ms.SendDatagramTo(addrs, frame)
	} else {
		for _, a := range addrs {
			err = errors.Join(err, tr.SendDatagram(a, frame))
		}
	}
	if err != nil {
		log.Fatal(err)
	}
	for i, p := range peers {
		select {
		case d := <-p.Datagrams():
			fmt.Printf("peer %d got %q\n", i, d.Data[1:])
			d.Release()
		case <-time.After(5 * time.Second):
			fmt.Println("lost")
		}
	}
	fmt.Println("datagrams sent:", sender.Stats().DatagramsSent)
	// Output:
	// peer 0 got "ev"
	// peer 1 got "ev"
	// peer 2 got "ev"
	// datagrams sent: 3
}
