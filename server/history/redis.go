package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

var _ Store = (*Redis)(nil)

// Redis is the many-node Store: a channel's history is a Redis stream whose entry ids
// are the offsets, beside a meta hash with its epoch (e) and top offset (s), both
// expiring TTL after the last publication. A Redis that lost them (flushed, restarted
// empty, evicted) starts a new epoch at the next publication or read.
//
// It is kept apart from server/cluster's presence and counts on purpose: the cluster
// uses AddAndPublish for its publications, and nothing else here depends on it.
type Redis struct {
	rdb    redis.Scripter
	prefix string
	pub    string // PUBLISH, or SPUBLISH on Redis Cluster
}

// NewRedis returns a store whose keys start with prefix (e.g. "jetsocket:<app>:").
func NewRedis(rdb redis.Scripter, prefix string) *Redis {
	return &Redis{rdb: rdb, prefix: prefix, pub: "PUBLISH"}
}

// NewRedisSharded is NewRedis for Redis Cluster: AddAndPublish publishes with
// SPUBLISH (sharded pub/sub), its channel in the slot of the history's keys.
func NewRedisSharded(rdb redis.Scripter, prefix string) *Redis {
	return &Redis{rdb: rdb, prefix: prefix, pub: "SPUBLISH"}
}

func (r *Redis) keys(channel string) []string {
	return []string{r.prefix + "history:" + channel, r.prefix + "history-meta:" + channel}
}

// addScript gives the publication the channel's next offset, appends it to the stream
// and, when ARGV[5] names a pub/sub channel, publishes it there with its position in
// front ("p<offset>:<epoch>:<body>"): one atomic step, so that no node sees a
// publication live that the history does not have, nor the other way round, and every
// node sees the publications in offset order.
var addScript = redis.NewScript(`
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[4]
  redis.call('HSET', KEYS[2], 'e', epoch)
end
local top = redis.call('HINCRBY', KEYS[2], 's', 1)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if top == 1 then
  -- a new epoch: whatever a stream outliving its meta holds is not in it
  redis.call('DEL', KEYS[1])
end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], top, 'd', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ARGV[5] ~= '' then
  redis.call(ARGV[7], ARGV[5], 'p' .. top .. ':' .. epoch .. ':' .. ARGV[6])
end
return {top, epoch}`)

// readScript returns {top, epoch, entries}: the entries from offset ARGV[3] on, at most
// ARGV[4] of them (0: all; -1: none). A channel without meta starts an epoch at 0.
var readScript = redis.NewScript(`
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[2], 'e', epoch, 's', 0)
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
local top = redis.call('HGET', KEYS[2], 's') or '0'
local limit = tonumber(ARGV[4])
if limit < 0 then return {top, epoch, {}} end
local entries
if limit > 0 then
  entries = redis.call('XRANGE', KEYS[1], ARGV[3], '+', 'COUNT', limit)
else
  entries = redis.call('XRANGE', KEYS[1], ARGV[3], '+')
end
return {top, epoch, entries}`)

// entry is a publication as stored in the stream (its offset is the entry id).
type entry struct {
	Event  string          `json:"e"`
	Data   json.RawMessage `json:"d,omitempty"`
	UserID string          `json:"u,omitempty"`
	Except string          `json:"x,omitempty"`
}

func (r *Redis) Add(ctx context.Context, channel string, p Publication, l Limits) (Position, error) {
	return r.AddAndPublish(ctx, channel, p, l, "", nil)
}

// AddAndPublish is Add that also publishes body on the pub/sub channel pubsub, prefixed
// with the position the publication got (see ParsePublished), in the same script.
func (r *Redis) AddAndPublish(ctx context.Context, channel string, p Publication, l Limits, pubsub string, body []byte) (Position, error) {
	e, err := json.Marshal(entry{Event: p.Event, Data: p.Data, UserID: p.UserID, Except: p.Except})
	if err != nil {
		return Position{}, fmt.Errorf("history: encode: %w", err)
	}
	res, err := addScript.Run(ctx, r.rdb, r.keys(channel),
		e, l.Size, l.TTL.Milliseconds(), NewEpoch(), pubsub, body, r.pub).Slice()
	if err != nil {
		return Position{}, fmt.Errorf("history: add to %s: %w", channel, err)
	}
	if len(res) != 2 {
		return Position{}, fmt.Errorf("history: add to %s: unexpected answer %v", channel, res)
	}
	top, _ := res[0].(int64)
	epoch, _ := res[1].(string)
	return Position{Epoch: epoch, Offset: uint64(top)}, nil
}

func (r *Redis) Read(ctx context.Context, channel string, q Query, l Limits) (Result, error) {
	res, err := readScript.Run(ctx, r.rdb, r.keys(channel),
		NewEpoch(), l.TTL.Milliseconds(), strconv.FormatUint(q.After+1, 10), q.Limit).Slice()
	if err != nil {
		return Result{}, fmt.Errorf("history: read %s: %w", channel, err)
	}
	if len(res) != 3 {
		return Result{}, fmt.Errorf("history: read %s: unexpected answer %v", channel, res)
	}
	topS, _ := res[0].(string)
	top, err := strconv.ParseUint(topS, 10, 64)
	if err != nil {
		return Result{}, fmt.Errorf("history: read %s: bad top offset %q", channel, topS)
	}
	epoch, _ := res[1].(string)
	out := Result{Position: Position{Epoch: epoch, Offset: top}}
	entries, _ := res[2].([]any)
	for _, raw := range entries {
		p, err := parseEntry(raw)
		if err != nil {
			return Result{}, fmt.Errorf("history: read %s: %w", channel, err)
		}
		if p.Offset > top { // left from an epoch whose meta was lost
			break
		}
		out.Publications = append(out.Publications, p)
	}
	return out, nil
}

// parseEntry decodes one XRANGE entry: {id, {field, value, ...}}.
func parseEntry(raw any) (Publication, error) {
	pair, ok := raw.([]any)
	if !ok || len(pair) != 2 {
		return Publication{}, fmt.Errorf("bad stream entry %v", raw)
	}
	id, _ := pair[0].(string)
	ms, _, _ := strings.Cut(id, "-")
	off, err := strconv.ParseUint(ms, 10, 64)
	if err != nil {
		return Publication{}, fmt.Errorf("bad stream entry id %q", id)
	}
	fields, _ := pair[1].([]any)
	for i := 0; i+1 < len(fields); i += 2 {
		if f, _ := fields[i].(string); f != "d" {
			continue
		}
		v, _ := fields[i+1].(string)
		var e entry
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			return Publication{}, fmt.Errorf("bad stream entry %s: %w", id, err)
		}
		return Publication{Offset: off, Event: e.Event, Data: e.Data, UserID: e.UserID, Except: e.Except}, nil
	}
	return Publication{}, fmt.Errorf("stream entry %s has no data", id)
}

// ParsePublished splits a pub/sub payload AddAndPublish sent into the position and the
// body; ok is false for a payload without one (a publication without history).
func ParsePublished(payload string) (pos Position, body string, ok bool, err error) {
	if !strings.HasPrefix(payload, "p") {
		return Position{}, payload, false, nil
	}
	off, rest, found := strings.Cut(payload[1:], ":")
	epoch, body, found2 := strings.Cut(rest, ":")
	n, perr := strconv.ParseUint(off, 10, 64)
	if !found || !found2 || perr != nil || epoch == "" {
		return Position{}, "", false, errors.New("history: malformed positioned payload")
	}
	return Position{Epoch: epoch, Offset: n}, body, true, nil
}
