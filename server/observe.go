package server

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/webhook"
)

// hubHooks turn channel life into webhooks and metrics.
func (a *app) hubHooks() hub.Hooks {
	send := func(ev webhook.Event) {
		if a.webhooks != nil {
			a.webhooks.Send(ev)
		}
	}
	return hub.Hooks{
		ChannelOccupied: func(ch string) { send(webhook.Event{Name: webhook.ChannelOccupied, Channel: ch}) },
		ChannelVacated:  func(ch string) { send(webhook.Event{Name: webhook.ChannelVacated, Channel: ch}) },
		MemberAdded: func(ch, user string) {
			send(webhook.Event{Name: webhook.MemberAdded, Channel: ch, UserID: user})
		},
		MemberRemoved: func(ch, user string) {
			send(webhook.Event{Name: webhook.MemberRemoved, Channel: ch, UserID: user})
		},
		Delivered: func(n int) { a.metrics.MessagesOut.Add(float64(n)) },
	}
}

// clientEventWebhook reports a relayed client event.
func (a *app) clientEventWebhook(ev *ClientEvent) {
	if a.webhooks == nil {
		return
	}
	a.webhooks.Send(webhook.Event{
		Name: webhook.ClientEvent, Channel: ev.Channel, Event: ev.Event,
		Data: string(ev.Data), SocketID: ev.SocketID, UserID: ev.UserID,
	})
}

// subscriptionGauge moves the subscriptions gauge of ch's type by delta.
func (a *app) subscriptionGauge(ch channels.Channel, delta float64) {
	a.metrics.Subscriptions.WithLabelValues(ch.Kind.String()).Add(delta)
}

// countingPublisher counts what the trigger service publishes.
type countingPublisher struct {
	h *hub.Hub
	c prometheus.Counter
}

func (p countingPublisher) Publish(ctx context.Context, m hub.Message) error {
	p.c.Inc()
	return p.h.Publish(ctx, m)
}
