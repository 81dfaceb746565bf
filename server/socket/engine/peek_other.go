//go:build !linux

package engine

// canPeek: WaitReadable is Linux's; elsewhere connections read as they always did
// (WaitReadable answers ErrNoWait).
const canPeek = false

func peekReadable(uintptr) bool { return true }
