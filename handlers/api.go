package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/trigger"
)

// Triggers publishes HTTP API events.
type Triggers interface {
	Publish(ctx context.Context, ev trigger.Event) error
	PublishBatch(ctx context.Context, batch []trigger.Event) error
	Terminate(ctx context.Context, userID string) error
}

// ChannelState answers the channel queries.
type ChannelState interface {
	Channels(ctx context.Context, prefix string) (map[string]int, error)
	Subscribers(ctx context.Context, channel string) (int, error)
	Members(ctx context.Context, channel string) ([]hub.Member, error)
}

func decodeBody(c *gin.Context, v any) error {
	dec := json.NewDecoder(c.Request.Body)
	if err := dec.Decode(v); err != nil {
		return errs.New(errs.Invalid, errs.CodeInvalidRequest, "body must be a JSON object")
	}
	return nil
}

// TriggerEvent answers POST /apps/:app_id/events.
func TriggerEvent(t Triggers, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		var ev trigger.Event
		if err := decodeBody(c, &ev); err != nil {
			Abort(c, log, err)
			return
		}
		if err := t.Publish(c.Request.Context(), ev); err != nil {
			Abort(c, log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{})
	}
}

// TriggerBatch answers POST /apps/:app_id/batch_events.
func TriggerBatch(t Triggers, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		var body struct {
			Batch []trigger.Event `json:"batch"`
		}
		if err := decodeBody(c, &body); err != nil {
			Abort(c, log, err)
			return
		}
		for i, ev := range body.Batch {
			if len(ev.Channels) > 0 {
				Abort(c, log, errs.New(errs.Invalid, errs.CodeInvalidRequest, "batch events take one channel each (batch["+strconv.Itoa(i)+"] has channels)"))
				return
			}
		}
		if err := t.PublishBatch(c.Request.Context(), body.Batch); err != nil {
			Abort(c, log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"batch": make([]struct{}, len(body.Batch))})
	}
}

// TerminateUser answers POST /apps/:app_id/users/:user_id/terminate_connections.
func TerminateUser(t Triggers, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := t.Terminate(c.Request.Context(), c.Param("user_id")); err != nil {
			Abort(c, log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{})
	}
}

func infoFields(c *gin.Context) map[string]bool {
	out := map[string]bool{}
	for _, f := range strings.Split(c.Query("info"), ",") {
		if f = strings.TrimSpace(f); f != "" {
			out[f] = true
		}
	}
	return out
}

// ListChannels answers GET /apps/:app_id/channels[?filter_by_prefix=&info=user_count].
func ListChannels(st ChannelState, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		prefix := c.Query("filter_by_prefix")
		info := infoFields(c)
		for f := range info {
			if f != "user_count" && f != "subscription_count" {
				Abort(c, log, errs.New(errs.Invalid, errs.CodeInvalidRequest, "info may list user_count and subscription_count"))
				return
			}
		}
		if info["user_count"] && !strings.HasPrefix(prefix, channels.PrefixPresence) {
			Abort(c, log, errs.New(errs.Invalid, errs.CodeInvalidRequest, "info=user_count needs filter_by_prefix=presence-"))
			return
		}
		occupied, err := st.Channels(c.Request.Context(), prefix)
		if err != nil {
			Abort(c, log, fmt.Errorf("list channels: %w", err))
			return
		}
		out := map[string]map[string]int{}
		for name, subs := range occupied {
			attrs := map[string]int{}
			if info["subscription_count"] {
				attrs["subscription_count"] = subs
			}
			if info["user_count"] {
				members, err := st.Members(c.Request.Context(), name)
				if err != nil {
					Abort(c, log, err)
					return
				}
				attrs["user_count"] = len(members)
			}
			out[name] = attrs
		}
		c.JSON(http.StatusOK, gin.H{"channels": out})
	}
}

// channelParam parses the :channel_name path parameter.
func channelParam(c *gin.Context) (channels.Channel, error) {
	return channels.Parse(c.Param("channel_name"))
}

// ChannelInfo answers GET /apps/:app_id/channels/:channel_name[?info=user_count,subscription_count].
func ChannelInfo(st ChannelState, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		ch, err := channelParam(c)
		if err != nil {
			Abort(c, log, err)
			return
		}
		info := infoFields(c)
		if info["user_count"] && ch.Kind != channels.Presence {
			Abort(c, log, errs.New(errs.Invalid, errs.CodeInvalidRequest, "user_count is only available for presence channels"))
			return
		}
		subs, err := st.Subscribers(c.Request.Context(), ch.Name)
		if err != nil {
			Abort(c, log, fmt.Errorf("channel %s: %w", ch.Name, err))
			return
		}
		out := gin.H{"occupied": subs > 0}
		if info["subscription_count"] {
			out["subscription_count"] = subs
		}
		if info["user_count"] {
			members, err := st.Members(c.Request.Context(), ch.Name)
			if err != nil {
				Abort(c, log, err)
				return
			}
			out["user_count"] = len(members)
		}
		c.JSON(http.StatusOK, out)
	}
}

// ChannelUsers answers GET /apps/:app_id/channels/:channel_name/users (presence only).
func ChannelUsers(st ChannelState, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		ch, err := channelParam(c)
		if err != nil {
			Abort(c, log, err)
			return
		}
		if ch.Kind != channels.Presence {
			Abort(c, log, errs.New(errs.Invalid, errs.CodeInvalidRequest, "users are only listed for presence channels"))
			return
		}
		members, err := st.Members(c.Request.Context(), ch.Name)
		if err != nil {
			Abort(c, log, err)
			return
		}
		users := make([]gin.H, len(members))
		for i, m := range members {
			users[i] = gin.H{"id": m.UserID}
		}
		c.JSON(http.StatusOK, gin.H{"users": users})
	}
}

// HistoryReader reads channels' history (hub.Hub).
type HistoryReader interface {
	History(ctx context.Context, channel string, q history.Query) (history.Result, error)
}

// maxHistoryLimit bounds ?limit= on the history endpoint, and is its default: one
// answer never carries a whole 100,000-publication history.
const maxHistoryLimit = 10_000

// ChannelHistory answers GET /apps/:app_id/channels/:channel_name/history?limit=&since=:
// {epoch, offset, publications: [{offset, event, data[, user_id]}]}, oldest first.
func ChannelHistory(h HistoryReader, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		ch, err := channelParam(c)
		if err != nil {
			Abort(c, log, err)
			return
		}
		q := history.Query{Limit: maxHistoryLimit}
		if s := c.Query("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > maxHistoryLimit {
				Abort(c, log, errs.New(errs.Invalid, errs.CodeInvalidRequest, fmt.Sprintf("limit must be a whole number from 1 to %d", maxHistoryLimit)))
				return
			}
			q.Limit = n
		}
		if s := c.Query("since"); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				Abort(c, log, errs.New(errs.Invalid, errs.CodeInvalidRequest, "since must be an offset: a whole number from 0"))
				return
			}
			q.After = n
		}
		res, err := h.History(c.Request.Context(), ch.Name, q)
		if errors.Is(err, hub.ErrNoHistory) {
			Abort(c, log, errs.New(errs.NotFound, errs.CodeHistoryOff, "channel "+ch.Name+" keeps no history (HISTORY_SIZE, CHANNEL_HISTORY)"))
			return
		}
		if err != nil {
			Abort(c, log, fmt.Errorf("history of %s: %w", ch.Name, err))
			return
		}
		type pub struct {
			Offset uint64          `json:"offset"`
			Event  string          `json:"event"`
			Data   json.RawMessage `json:"data"`
			UserID string          `json:"user_id,omitempty"`
		}
		pubs := make([]pub, len(res.Publications))
		for i, p := range res.Publications {
			data := p.Data
			if len(data) == 0 {
				data = json.RawMessage("null")
			}
			pubs[i] = pub{p.Offset, p.Event, data, p.UserID}
		}
		c.JSON(http.StatusOK, gin.H{"epoch": res.Position.Epoch, "offset": res.Position.Offset, "publications": pubs})
	}
}
