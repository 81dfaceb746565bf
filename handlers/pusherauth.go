package handlers

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/middleware"
	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/encryption"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/tokens"
)

// maxPusherAuthBody bounds an auth request's body: a socket id and a channel name.
const maxPusherAuthBody = 4 << 10

// socketIDForm is Pusher's socket id form, which the signature covers.
var socketIDForm = regexp.MustCompile(`^\d{1,20}\.\d{1,20}$`)

// PusherApp is what the auth endpoints sign with and put in their answers.
type PusherApp struct {
	Key, Secret string
	// MasterKey derives encrypted channels' shared_secret; nil when not configured.
	MasterKey []byte
	// IncludeEmail puts the email claim in presence user_info (PRESENCE_INCLUDE_EMAIL).
	IncludeEmail bool
}

// PusherAuthAnswer is POST /pusher/auth's answer, as pusher-js's channelAuthorization
// expects it.
type PusherAuthAnswer struct {
	Auth         string `json:"auth"`
	ChannelData  string `json:"channel_data,omitempty"`
	SharedSecret string `json:"shared_secret,omitempty"`
}

// PusherAuth answers POST /pusher/auth: the server as a Pusher channel authorization
// endpoint for JWT users (behind middleware.Bearer). The body is pusher-js's form
// (socket_id, channel_name; JSON is accepted too); the channel rules (PRODUCT.md §5)
// decide on the token's claims, and the answer is signed with APP_SECRET: presence
// channels get channel_data {user_id, user_info} from the claims, encrypted ones the
// channel's shared_secret.
func PusherAuth(app PusherApp, authorizer *channels.Authorizer, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		claims := middleware.ClaimsOf(c)
		form, err := readPusherForm(c)
		if err != nil {
			Abort(c, log, err)
			return
		}
		socketID, name := form.Get("socket_id"), form.Get("channel_name")
		if !socketIDForm.MatchString(socketID) {
			Abort(c, log, errs.New(errs.Invalid, errs.CodeInvalidSocketID, "socket_id must have Pusher's form <digits>.<digits>"))
			return
		}
		if hub.Internal(name) {
			Abort(c, log, errs.New(errs.Forbidden, errs.CodeInternalChannel, "internal channels (names starting with #) cannot be subscribed by clients"))
			return
		}
		ch, err := channels.Parse(name)
		if err != nil {
			Abort(c, log, err)
			return
		}
		if err := authorizer.Authorize(channels.Request{Claims: claims, Channel: ch, SocketID: socketID}); err != nil {
			log.Info("pusher auth refused", "user_id", claims.UserID(), "channel", ch.Name, "code", errs.From(err).Code)
			Abort(c, log, err)
			return
		}
		var ans PusherAuthAnswer
		if ch.Kind == channels.Presence {
			data, _ := json.Marshal(map[string]any{"user_id": claims.UserID(), "user_info": userInfo(claims, app.IncludeEmail)})
			ans.ChannelData = string(data)
		}
		if ch.Kind == channels.PrivateEncrypted {
			if app.MasterKey == nil {
				Abort(c, log, errs.New(errs.Unavailable, errs.CodeEncryptionNotConfigured, "encrypted channels are not configured on this server (ENCRYPTION_MASTER_KEY)"))
				return
			}
			ans.SharedSecret = encryption.SharedSecret(ch.Name, app.MasterKey)
		}
		ans.Auth = channels.ChannelAuth(app.Key, app.Secret, socketID, ch.Name, ans.ChannelData)
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusOK, ans)
	}
}

// PusherUserAuth answers POST /pusher/user-auth: a sign-in (pusher:signin) for the
// token's user, {auth, user_data} with user_data {id, user_info}.
func PusherUserAuth(app PusherApp, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		claims := middleware.ClaimsOf(c)
		form, err := readPusherForm(c)
		if err != nil {
			Abort(c, log, err)
			return
		}
		socketID := form.Get("socket_id")
		if !socketIDForm.MatchString(socketID) {
			Abort(c, log, errs.New(errs.Invalid, errs.CodeInvalidSocketID, "socket_id must have Pusher's form <digits>.<digits>"))
			return
		}
		if claims.UserID() == "" {
			Abort(c, log, errs.New(errs.Forbidden, errs.CodeNoSubject, "the token names no user (sub)"))
			return
		}
		data, _ := json.Marshal(map[string]any{"id": claims.UserID(), "user_info": userInfo(claims, app.IncludeEmail)})
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusOK, gin.H{"auth": channels.UserAuth(app.Key, app.Secret, socketID, string(data)), "user_data": string(data)})
	}
}

// userInfo is a user's public info from the claims, as presence shows it.
func userInfo(cl *tokens.Claims, includeEmail bool) map[string]string {
	info := map[string]string{"name": cl.Name}
	if includeEmail && cl.Email != "" {
		info["email"] = cl.Email
	}
	return info
}

// readPusherForm reads pusher-js's url-encoded body, or a JSON object of strings.
func readPusherForm(c *gin.Context) (url.Values, error) {
	bad := errs.New(errs.Invalid, errs.CodeInvalidRequest, "body must be a form (socket_id, channel_name) or a JSON object of them")
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxPusherAuthBody)
	if c.ContentType() == "application/json" {
		var m map[string]string
		if err := json.NewDecoder(body).Decode(&m); err != nil {
			return nil, bad
		}
		v := url.Values{}
		for k, s := range m {
			v.Set(k, s)
		}
		return v, nil
	}
	c.Request.Body = body
	if err := c.Request.ParseForm(); err != nil {
		return nil, bad
	}
	return c.Request.PostForm, nil
}
