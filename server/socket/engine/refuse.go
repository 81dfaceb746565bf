package engine

import (
	"log/slog"
	"net/http"

	"github.com/jetsocket/jetsocket/server/errs"
)

// RefuseTooMany answers a request over MAX_CONNECTIONS_PER_IP: 429 too_many_connections.
// what names the socket refused ("session", "upgrade") in the log.
func RefuseTooMany(w http.ResponseWriter, log *slog.Logger, ip, what string) {
	log.Warn("socket refused", "reason", errs.CodeTooManyConnections, "ip", ip, "what", what)
	errs.Write(w, errs.New(errs.RateLimited, errs.CodeTooManyConnections, "this address has too many open connections"))
}
