package main

import (
	"context"
	"log"
	"os"
	"os/signal"

	"github.com/gin-gonic/gin"
	"github.com/jetsocket/jetsocket/server"
	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/protocol"
)

func main() {
	const lobby, secure = "presence-lobby", "private-encrypted-secure-chat"
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := server.RunWith(ctx, server.Options{Args: os.Args[1:], Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr,
		Extensions: server.Extensions{
			Events: []protocol.Event{protocol.On("lobby:say", func(r protocol.Request[struct{ Text string }]) (any, error) {
				members, err := r.Channels.Members(r.Ctx, lobby)
				if err == nil {
					err = r.Trigger.Trigger(r.Ctx, []string{lobby}, "lobby:said", map[string]string{"user_id": r.UserID, "text": r.Payload.Text}, "")
				}
				return map[string]any{"ok": err == nil, "heard_by": len(members)}, err
			})},
			Guards: []channels.Guard{func(r channels.Request) error { // the secure chat is for the ops group
				if r.Channel.Name != secure {
					return channels.ErrNoOpinion // the next guard, then the default rules decide
				} else if !r.Claims.HasGroup("ops") {
					return channels.Denied("ops only")
				}
				return nil
			}},
			ChannelHooks: []protocol.ChannelHooks{{Pattern: lobby, OnSubscribe: func(ctx context.Context, s protocol.Subscription) {
				_ = s.Trigger.TriggerToUser(ctx, s.UserID, "lobby:welcome", map[string]string{"channel": s.Channel}) // on every connection of theirs
			}}},
			Routes: func(r gin.IRouter, s server.Services) { // POST {message} with "Authorization: Bearer <JWT>"
				r.POST("/send-encrypted-message", s.Bearer, func(c *gin.Context) {
					var body struct{ Message string }
					if c.ShouldBindJSON(&body) != nil || body.Message == "" {
						s.Abort(c, errs.New(errs.Invalid, errs.CodeInvalidRequest, "the body must be {message}"))
						return
					}
					msg := gin.H{"from": s.Claims(c).UserID(), "message": body.Message}
					if err := s.Trigger.Trigger(c.Request.Context(), []string{secure}, "secure-message", msg, ""); err != nil {
						s.Abort(c, err)
						return
					}
					c.JSON(200, gin.H{"ok": true})
				})
			},
		},
	}); err != nil {
		log.Fatal(err)
	}
}
