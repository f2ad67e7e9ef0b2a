// Package zonestest builds member lists and topologies for tests: other
// packages' tests (the mesh, the bridges, sim scenarios) describe a cluster
// in one line, as in
//
//	ms := zonestest.Members(t, "a:n1,n2 b:n3/suspect c:n4/failed")
//
// and hand it to zones.New or to whatever takes []syncbus.Member.
//
// It sits beside zones and imports only syncbus (and testing), so any
// package's tests can use it. Production code never imports it. Its
// functions keep no state and are safe for concurrent use.
package zonestest
