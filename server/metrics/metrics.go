// Package metrics holds Jetsocket's Prometheus collectors, on a registry of its own
// (no global state): GET /metrics serves it.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's counters and gauges.
type Metrics struct {
	Registry *prometheus.Registry

	Connections         prometheus.Gauge
	ConnectionsTotal    prometheus.Counter
	Disconnects         *prometheus.CounterVec // by reason
	Subscriptions       *prometheus.GaugeVec   // by channel type
	SubscribeRefused    *prometheus.CounterVec // by code
	Recoveries          *prometheus.CounterVec // subscribes with since, by recovered (true/false)
	MessagesIn          *prometheus.CounterVec // packets from clients, by kind
	MessagesOut         prometheus.Counter     // packets queued to clients
	Published           *prometheus.CounterVec // messages published, by source
	AuthFailures        *prometheus.CounterVec // by reason
	Logins              *prometheus.CounterVec // by outcome
	ClientEventsDropped *prometheus.CounterVec // by code
	SlowConsumers       prometheus.Counter
	ConnectionsRefused  *prometheus.CounterVec // by reason (limits)
	WebhookDeliveries   *prometheus.CounterVec // by outcome
	WebhookQueueDrops   prometheus.Counter
	TokenExpiries       prometheus.Counter
	TokenRefreshes      *prometheus.CounterVec // by outcome
	JWKSRefreshes       *prometheus.CounterVec // identity provider key fetches, by outcome
	JWKSKeys            prometheus.Gauge       // identity provider keys cached
}

// New creates and registers the collectors, plus Go runtime and process metrics.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry:            r,
		Connections:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "jetsocket_connections", Help: "Open socket connections."}),
		ConnectionsTotal:    prometheus.NewCounter(prometheus.CounterOpts{Name: "jetsocket_connections_total", Help: "Socket connections accepted."}),
		Disconnects:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jetsocket_disconnects_total", Help: "Socket connections closed, by reason."}, []string{"reason"}),
		Subscriptions:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "jetsocket_subscriptions", Help: "Channel subscriptions, by channel type."}, []string{"type"}),
		SubscribeRefused:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jetsocket_subscribe_refused_total", Help: "Subscriptions refused, by code."}, []string{"code"}),
		Recoveries:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jetsocket_recoveries_total", Help: "Subscribes that asked to recover history (since), by whether they recovered."}, []string{"recovered"}),
		MessagesIn:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jetsocket_messages_in_total", Help: "Events received from clients, by kind."}, []string{"kind"}),
		MessagesOut:         prometheus.NewCounter(prometheus.CounterOpts{Name: "jetsocket_messages_out_total", Help: "Events queued to clients."}),
		Published:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jetsocket_published_total", Help: "Messages published to channels, by source."}, []string{"source"}),
		AuthFailures:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jetsocket_auth_failures_total", Help: "Socket handshakes refused, by reason."}, []string{"reason"}),
		Logins:              prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jetsocket_logins_total", Help: "Login attempts, by outcome."}, []string{"outcome"}),
		ClientEventsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jetsocket_client_events_dropped_total", Help: "Client events refused, by code."}, []string{"code"}),
		SlowConsumers:       prometheus.NewCounter(prometheus.CounterOpts{Name: "jetsocket_slow_consumers_total", Help: "Connections closed because their send queue was full."}),
		ConnectionsRefused:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jetsocket_connections_refused_total", Help: "Handshakes refused by connection limits, by reason."}, []string{"reason"}),
		WebhookDeliveries:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jetsocket_webhook_deliveries_total", Help: "Webhook batches per receiver, by outcome: ok, retry, failed, dropped (backlog full), expired (too old), abandoned (at shutdown)."}, []string{"outcome"}),
		WebhookQueueDrops:   prometheus.NewCounter(prometheus.CounterOpts{Name: "jetsocket_webhook_events_dropped_total", Help: "Webhook events dropped because the queue was full."}),
		TokenExpiries:       prometheus.NewCounter(prometheus.CounterOpts{Name: "jetsocket_token_expiries_total", Help: "Connections closed at token expiry."}),
		TokenRefreshes:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jetsocket_token_refreshes_total", Help: "Token refreshes, by outcome."}, []string{"outcome"}),
		JWKSRefreshes:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jetsocket_jwks_refreshes_total", Help: "Fetches of the identity provider's keys (JWKS_URL), by outcome (ok, error)."}, []string{"outcome"}),
		JWKSKeys:            prometheus.NewGauge(prometheus.GaugeOpts{Name: "jetsocket_jwks_keys", Help: "Identity provider keys cached."}),
	}
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Connections, m.ConnectionsTotal, m.Disconnects, m.Subscriptions, m.SubscribeRefused, m.Recoveries,
		m.MessagesIn, m.MessagesOut, m.Published, m.AuthFailures, m.Logins, m.ClientEventsDropped,
		m.SlowConsumers, m.ConnectionsRefused, m.WebhookDeliveries, m.WebhookQueueDrops,
		m.TokenExpiries, m.TokenRefreshes, m.JWKSRefreshes, m.JWKSKeys,
	)
	for _, o := range []string{"ok", "error"} {
		m.JWKSRefreshes.WithLabelValues(o)
	}
	for _, t := range []string{"public", "private", "presence", "private-encrypted"} {
		m.Subscriptions.WithLabelValues(t)
	}
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// CountClusterReceived exports received, the count of publications this node got from
// Redis in many-node mode, as jetsocket_cluster_received_total: with per-channel
// subscriptions it grows with the traffic of this node's channels only.
func (m *Metrics) CountClusterReceived(received func() uint64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "jetsocket_cluster_received_total",
		Help: "Publications this node received from Redis (many-node mode).",
	}, func() float64 { return float64(received()) }))
}
