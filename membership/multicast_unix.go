//go:build unix

package membership

import (
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// shareAddr lets every node of a host bind the group's port: SO_REUSEADDR
// on Linux, where every socket bound to a multicast address and port gets
// a copy of each datagram, and SO_REUSEPORT as well on the BSDs and macOS,
// which need it for the same.
func shareAddr(network, address string, c syscall.RawConn) error {
	var err error
	ctrlErr := c.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if err == nil && runtime.GOOS != "linux" {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	if ctrlErr != nil {
		return ctrlErr
	}
	return err
}
