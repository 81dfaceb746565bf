package channels

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jetsocket/jetsocket/server/apisig"
	"github.com/jetsocket/jetsocket/server/errs"
)

// MaxChannelData bounds a presence subscribe's channel_data (Pusher's limit for user data
// is about 1 KB too).
const MaxChannelData = 1024

// Delegated is the guard of Pusher's delegated authorization: a subscribe that carries
// auth, signed by an app backend with a Pusher SDK's authorizeChannel, is allowed when
// the signature is APP_KEY:hex HMAC-SHA256(APP_SECRET, socket_id:channel[:channel_data])
// for this connection's socket id. A subscribe without auth is left to the other guards;
// one with a wrong signature is refused, not passed on, so a broken backend shows up.
// It allows encrypted channels too: the backend that signs decides, as with Pusher.
func Delegated(key, secret string) Guard {
	return func(r Request) error {
		if r.Auth == "" {
			return ErrNoOpinion
		}
		if _, err := VerifyAuth(key, secret, r); err != nil {
			return err
		}
		return nil
	}
}

// ChannelAuth is the auth an app backend signs for socketID on channel (channelData
// only for presence channels), exactly as Pusher's SDKs compute it.
func ChannelAuth(key, secret, socketID, channel, channelData string) string {
	s := socketID + ":" + channel
	if channelData != "" {
		s += ":" + channelData
	}
	return key + ":" + apisig.Sign(secret, s)
}

// PresenceData is a presence member as a backend vouches for it in channel_data.
type PresenceData struct {
	UserID   string
	UserInfo json.RawMessage
}

// VerifyAuth checks r's delegated authorization. For a presence channel it also decodes
// channel_data, whose user then is the member (nil for other channels).
func VerifyAuth(key, secret string, r Request) (*PresenceData, error) {
	if err := checkKey(key, r.Auth); err != nil {
		return nil, err
	}
	if len(r.ChannelData) > MaxChannelData {
		return nil, errs.New(errs.Invalid, errs.CodeInvalidChannelData, fmt.Sprintf("channel_data is limited to %d bytes", MaxChannelData))
	}
	if r.Channel.Kind != Presence && r.ChannelData != "" {
		return nil, errs.New(errs.Invalid, errs.CodeInvalidChannelData, "channel_data is only for presence channels")
	}
	if err := checkSignature(r.Auth, ChannelAuth(key, secret, r.SocketID, r.Channel.Name, r.ChannelData), "channel"); err != nil {
		return nil, err
	}
	if r.Channel.Kind != Presence {
		return nil, nil
	}
	return parsePresenceData(r.ChannelData)
}

// parsePresenceData reads {user_id, user_info?}; user_id may be a string or a number,
// as Pusher's SDKs accept either.
func parsePresenceData(s string) (*PresenceData, error) {
	bad := func(msg string) error { return errs.New(errs.Invalid, errs.CodeInvalidChannelData, msg) }
	if s == "" {
		return nil, bad("a presence channel authorized by auth needs channel_data {user_id, user_info}")
	}
	var raw struct {
		UserID   json.RawMessage `json:"user_id"`
		UserInfo json.RawMessage `json:"user_info"`
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, bad("channel_data must be a JSON object {user_id, user_info}")
	}
	var id string
	if err := json.Unmarshal(raw.UserID, &id); err != nil {
		var n json.Number
		if err := json.Unmarshal(raw.UserID, &n); err != nil {
			return nil, bad("channel_data.user_id must be a string or a number")
		}
		id = n.String()
	}
	if id == "" || len(id) > 128 {
		return nil, bad("channel_data.user_id must be 1 to 128 characters")
	}
	info := raw.UserInfo
	if len(info) == 0 || string(info) == "null" {
		info = json.RawMessage(`{}`)
	}
	return &PresenceData{UserID: id, UserInfo: info}, nil
}

// UserAuth is the auth an app backend signs for a user sign-in of socketID with userData
// (Pusher's authenticateUser): APP_KEY:hex HMAC-SHA256 of socket_id::user::user_data.
func UserAuth(key, secret, socketID, userData string) string {
	return key + ":" + apisig.Sign(secret, socketID+"::user::"+userData)
}

// VerifyUser checks a sign-in's auth for socketID and returns the user id in userData
// ({id, ...}, the id a non-empty string).
func VerifyUser(key, secret, socketID, auth, userData string) (string, error) {
	if err := checkKey(key, auth); err != nil {
		return "", err
	}
	if len(userData) > MaxChannelData {
		return "", errs.New(errs.Invalid, errs.CodeInvalidUserData, fmt.Sprintf("user_data is limited to %d bytes", MaxChannelData))
	}
	if err := checkSignature(auth, UserAuth(key, secret, socketID, userData), "user_data"); err != nil {
		return "", err
	}
	var u struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(userData), &u); err != nil || u.ID == "" || len(u.ID) > 128 {
		return "", errs.New(errs.Invalid, errs.CodeInvalidUserData, "user_data must be a JSON object with a non-empty string id of at most 128 characters")
	}
	return u.ID, nil
}

// checkKey refuses an auth that is not "<key>:..." for this app's key.
func checkKey(key, auth string) error {
	if got, _, ok := strings.Cut(auth, ":"); !ok || got != key {
		return errs.New(errs.Forbidden, errs.CodeInvalidAuth, "auth must be \"<app key>:<signature>\" for this app")
	}
	return nil
}

// checkSignature compares auth with the expected one in constant time.
func checkSignature(auth, want, what string) error {
	if !hmac.Equal([]byte(auth), []byte(want)) {
		return errs.New(errs.Forbidden, errs.CodeInvalidAuth, "auth is not a valid signature of this socket id and "+what)
	}
	return nil
}
