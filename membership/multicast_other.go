//go:build !unix

package membership

import "syscall"

// shareAddr leaves the socket as it is: on this system one node per host
// listens on a group's port.
func shareAddr(network, address string, c syscall.RawConn) error { return nil }
