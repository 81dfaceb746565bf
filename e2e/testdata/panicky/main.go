// Command panicky is a server built with the extension API (server.RunWith, as the
// README's "Extending" example) whose developer code panics: a custom event, a guard
// and every channel hook, on names containing "boom". e2e/extending.test.mjs drives it:
// each panic is answered as a 500 refusal and the connection and the process go on.
package main

import (
	"context"
	"encoding/json"
	"log"
	"os"
	"os/signal"
	"strings"

	"github.com/jetsocket/jetsocket/server"
	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/protocol"
)

func boom(name string) {
	if strings.Contains(name, "boom") {
		panic("developer code exploded on " + name)
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := server.RunWith(ctx, server.Options{Args: os.Args[1:], Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr,
		Extensions: server.Extensions{
			Events: []protocol.Event{protocol.On("explode", func(protocol.Request[json.RawMessage]) (any, error) {
				panic("developer code exploded in an event handler")
			})},
			Guards: []channels.Guard{func(r channels.Request) error {
				if r.Channel.Name == "private-boom-guard" {
					boom(r.Channel.Name)
				}
				return channels.ErrNoOpinion
			}},
			ChannelHooks: []protocol.ChannelHooks{
				{Pattern: "*boom-sub*", OnSubscribe: func(_ context.Context, s protocol.Subscription) { boom(s.Channel) }},
				{Pattern: "*boom-unsub*", OnUnsubscribe: func(_ context.Context, s protocol.Subscription) { boom(s.Channel) }},
				{Pattern: "*boom-client*", OnClientEvent: func(_ context.Context, ev *protocol.ClientEvent) error { boom(ev.Channel); return nil }},
			},
		},
	}); err != nil {
		log.Fatal(err)
	}
}
