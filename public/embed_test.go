package public

import (
	"io/fs"
	"testing"
)

// The JS client ships in the binary beside the demo that uses it.
func TestEmbedsTheJSClient(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "js/jetsocket.js", "js/jetsocket.d.ts", "vendor/socket.io.min.js", "vendor/nacl-fast.min.js", "vendor/pusher-with-encryption.min.js", "pusher-mode.js"} {
		if _, err := fs.Stat(FS(), name); err != nil {
			t.Errorf("%s not embedded: %v", name, err)
		}
	}
}
