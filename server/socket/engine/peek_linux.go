package engine

import (
	"syscall"
	"unsafe"
)

// canPeek: WaitReadable works here.
const canPeek = true

// peekReadable reports whether fd has a byte to read or is at its end, taking nothing.
// RawSyscall: MSG_DONTWAIT never blocks, and Syscall's scheduler bookkeeping would
// deepen the stack Readiness.Wait keeps small.
func peekReadable(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if errno != syscall.EINTR {
			return errno != syscall.EAGAIN
		}
	}
}
