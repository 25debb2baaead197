package handlers

import (
	"net"
	"syscall"
	"unsafe"
)

// unsent is how many bytes written to c its peer has not yet acknowledged
// (the socket's send queue, SIOCOUTQ); ok is false when it cannot tell.
func unsent(c net.Conn) (n int, ok bool) {
	tcp, isTCP := c.(*net.TCPConn)
	if !isTCP {
		return 0, false
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return 0, false
	}
	var errno syscall.Errno
	err = raw.Control(func(fd uintptr) {
		var v int32
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, siocoutq, uintptr(unsafe.Pointer(&v)))
		n = int(v)
	})
	return n, err == nil && errno == 0
}

// siocoutq is Linux's SIOCOUTQ (the same number as TIOCOUTQ).
const siocoutq = syscall.TIOCOUTQ
