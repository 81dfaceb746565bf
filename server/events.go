package server

import (
	"encoding/json"
	"time"

	"github.com/jetsocket/jetsocket/server/socket"
)

// Socket events clients may send.
const eventPing = "jetsocket:ping"

func (a *app) registerSocketHandlers() {
	// jetsocket:ping answers its ack at once: a cheap liveness and latency check for
	// clients, and the probe the reliability tests use.
	a.sockets.Handle(eventPing, func(c *socket.Conn, _ string, _ []json.RawMessage) any {
		a.metrics.MessagesIn.WithLabelValues("ping").Inc()
		return map[string]any{"pong": true, "time_ms": time.Now().UnixMilli()}
	})
}
