// Package public embeds the browser demo (login form and chat) served at GET /.
package public

import (
	"embed"
	"io/fs"
)

//go:embed *.html *.js *.css vendor js
var files embed.FS

// FS is the demo's files, rooted at the directory.
func FS() fs.FS { return files }
