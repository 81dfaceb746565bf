package protocol

import (
	"fmt"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/tokens"
)

// BenchmarkConnectDisconnect is the connect path's cost with the memory presence: a
// connection joins its user's channels and leaves them.
func BenchmarkConnectDisconnect(b *testing.B) {
	f := newFixtureWith(b, nil, Options{}, hub.NewMemoryPresence())
	tm, _ := tokens.NewManager(tokens.Config{Secret: f.cfg.JWTSecret, TTL: time.Hour})
	claims, err := tm.Verify(f.token(b, alice))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := newFakeConn(fmt.Sprint("1.", i), claims)
		f.svc.Connect(c)
		f.svc.Disconnect(c, "client gone")
	}
}
