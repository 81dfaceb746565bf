// Package history keeps each channel's recent publications and gives every publication
// a position {epoch, offset}: offset counts 1, 2, 3... per channel, and epoch is a short
// random string that changes whenever the channel's history was lost (first use,
// expiry, a Redis that lost its data, a lone node restarted). A client that kept the
// position of the last publication it saw can ask for what came after it (Recover):
// either every publication it missed, in order, or a plain "not recovered".
//
// Store is the contract; Memory is the single-node store and Redis the many-node one
// (in Redis, the position is assigned, the history appended and the publication sent to
// every node by one script, so that history and live delivery never disagree). The
// suite in historytest runs over both.
package history

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Position is where a publication sits in its channel's history.
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// Publication is one kept publication: what a subscriber got, without the channel.
type Publication struct {
	Offset uint64          `json:"offset"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data,omitempty"`
	// UserID is set on client events (delivered as user_id).
	UserID string `json:"user_id,omitempty"`
	// Except is the socket id the publication was not delivered to (a client event's
	// sender, an API trigger's socket_id): a replay to that socket must not deliver it
	// either. Never shown to clients.
	Except string `json:"-"`
}

// ExcludedFor reports whether p was not to be delivered to socketID.
func (p Publication) ExcludedFor(socketID string) bool {
	return p.Except != "" && p.Except == socketID
}

// Limits bound one channel's history. Size 0 turns history off for the channel.
type Limits struct {
	Size int           // publications kept
	TTL  time.Duration // how long the history lives after its last publication
}

// On reports whether the channel keeps history.
func (l Limits) On() bool { return l.Size > 0 && l.TTL > 0 }

// Query selects publications from a channel's history.
type Query struct {
	// After: only publications with a greater offset (0: from the oldest kept).
	After uint64
	// Limit: at most this many, oldest first (0: all kept; -1: none, the position only).
	Limit int
}

// Result is a channel's latest position and the publications a Query selected.
type Result struct {
	Position     Position
	Publications []Publication
}

// Store keeps channels' histories. Reading a channel that has none starts one (a new
// epoch at offset 0), so that a subscriber that saw nothing yet still holds a position
// that later publications continue.
type Store interface {
	// Add appends p (its Offset is ignored) to channel's history, bounded by l, and
	// returns the position it was given.
	Add(ctx context.Context, channel string, p Publication, l Limits) (Position, error)
	Reader
}

// Reader reads channels' histories.
type Reader interface {
	// Read returns channel's latest position and the publications q selects.
	Read(ctx context.Context, channel string, q Query, l Limits) (Result, error)
}

// Recover reads what channel published after since. recovered is true when since is in
// the channel's current epoch and every publication after it is still kept; then pubs
// is all of them, oldest first. Otherwise (another epoch, trimmed, expired, a position
// from the future) pubs is empty: a partial replay is never passed off as complete.
func Recover(ctx context.Context, s Reader, channel string, since Position, l Limits) (pubs []Publication, pos Position, recovered bool, err error) {
	res, err := s.Read(ctx, channel, Query{After: since.Offset}, l)
	if err != nil {
		return nil, Position{}, false, err
	}
	pos = res.Position
	if since.Epoch != pos.Epoch || since.Offset > pos.Offset {
		return nil, pos, false, nil
	}
	missed := pos.Offset - since.Offset
	if uint64(len(res.Publications)) != missed {
		return nil, pos, false, nil
	}
	if missed > 0 && res.Publications[0].Offset != since.Offset+1 {
		return nil, pos, false, nil
	}
	return res.Publications, pos, true, nil
}

// NewEpoch returns a fresh epoch: 8 random bytes, base64url (11 characters).
func NewEpoch() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ChannelReader reads a channel's history under its own limits (hub.Hub).
type ChannelReader interface {
	History(ctx context.Context, channel string, q Query) (Result, error)
}

// Last returns the channel's latest publication, read from its history (the same on
// every node): what a cache channel's new subscriber gets, on either protocol. ok is
// false when there is none (no publication yet, expired); err when the channel keeps
// no history or the store failed.
func Last(ctx context.Context, r ChannelReader, channel string) (p Publication, ok bool, err error) {
	head, err := r.History(ctx, channel, Query{Limit: -1})
	if err != nil {
		return Publication{}, false, fmt.Errorf("history head of %s: %w", channel, err)
	}
	if head.Position.Offset == 0 {
		return Publication{}, false, nil
	}
	res, err := r.History(ctx, channel, Query{After: head.Position.Offset - 1, Limit: 1})
	if err != nil {
		return Publication{}, false, fmt.Errorf("last publication of %s: %w", channel, err)
	}
	if len(res.Publications) == 0 {
		return Publication{}, false, nil
	}
	return res.Publications[0], true, nil
}
