//go:build unix

package cli

import (
	"io/fs"
	"syscall"
)

// fileOwner is the owner of a file, for the rewritten users file to keep.
func fileOwner(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
