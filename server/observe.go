package server

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

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
		// Set before any connection exists, so before any count changes.
		Counted: func(ch string, total int) { a.pusher.CountChanged(ch, total) },
	}
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
