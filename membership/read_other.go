//go:build !linux

package membership

import "net"

// newBatchReader returns nil: batched reads are a Linux system call, so
// other systems read one datagram per call.
func newBatchReader(*net.UDPConn, int) datagramReader { return nil }
