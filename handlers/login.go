// Package handlers holds Jetsocket's HTTP handlers. Each takes its dependencies as
// arguments; the routes are listed in server/routes.go.
package handlers

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/tokens"
)

// Authenticator checks a username and password.
type Authenticator interface {
	Authenticate(username, password string) (tokens.User, error)
	Exists(username string) bool
}

// Issuer mints tokens.
type Issuer interface {
	Issue(u tokens.User) (string, time.Time, error)
}

// Limiter rate-limits by key.
type Limiter interface {
	Allow(key string) (bool, time.Duration)
}

// maxLoginBody bounds a login body: two short strings.
const maxLoginBody = 4 << 10

// LoginResponse is the body of a successful login.
type LoginResponse struct {
	Token     string    `json:"token"`
	TokenType string    `json:"token_type"`
	ExpiresAt time.Time `json:"expires_at"`
	User      LoginUser `json:"user"`
}

// LoginUser identifies the logged-in user.
type LoginUser struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Login answers POST /login with a JSON or form body {username, password}. Unknown
// users and wrong passwords get the same 401 after the same bcrypt work.
func Login(users Authenticator, issuer Issuer, limiter Limiter, onResult func(outcome string), log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		ip := c.ClientIP()
		if ok, wait := limiter.Allow(ip); !ok {
			secs := int(math.Ceil(wait.Seconds()))
			c.Header("Retry-After", strconv.Itoa(max(secs, 1)))
			onResult(errs.CodeRateLimited)
			log.Warn("login refused", "reason", errs.CodeRateLimited, "ip", ip)
			Abort(c, log, errs.New(errs.RateLimited, errs.CodeRateLimited, "too many login attempts; retry later"))
			return
		}
		creds, err := readCredentials(c)
		if err != nil {
			onResult(errs.CodeInvalidRequest)
			Abort(c, log, err)
			return
		}
		user, err := users.Authenticate(creds.Username, creds.Password)
		if err != nil {
			onResult(errs.CodeInvalidCredentials)
			// The username is logged only when it names a real user: a password typed
			// into the username field must not reach the logs.
			if users.Exists(creds.Username) {
				log.Warn("login refused", "reason", "wrong_password", "username", creds.Username, "ip", ip)
			} else {
				log.Warn("login refused", "reason", "unknown_user", "ip", ip)
			}
			Abort(c, log, errs.New(errs.Unauthorized, errs.CodeInvalidCredentials, "wrong username or password"))
			return
		}
		token, exp, err := issuer.Issue(user)
		if err != nil {
			onResult("error")
			Abort(c, log, err)
			return
		}
		onResult("ok")
		log.Info("login ok", "user_id", user.ID, "ip", ip)
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusOK, LoginResponse{Token: token, TokenType: "Bearer", ExpiresAt: exp.UTC(), User: LoginUser{ID: user.ID, Name: user.Name}})
	}
}

func readCredentials(c *gin.Context) (credentials, error) {
	var cr credentials
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxLoginBody)
	ct := c.ContentType()
	switch ct {
	case "application/json":
		dec := json.NewDecoder(body)
		if err := dec.Decode(&cr); err != nil {
			if tooLarge(err) {
				return cr, errLoginTooLarge
			}
			return cr, errs.New(errs.Invalid, errs.CodeInvalidRequest, "body must be a JSON object {username, password}")
		}
	case "application/x-www-form-urlencoded":
		c.Request.Body = body
		if err := c.Request.ParseForm(); err != nil {
			if tooLarge(err) {
				return cr, errLoginTooLarge
			}
			return cr, errs.New(errs.Invalid, errs.CodeInvalidRequest, "malformed form body")
		}
		cr.Username, cr.Password = c.Request.PostForm.Get("username"), c.Request.PostForm.Get("password")
	case "multipart/form-data":
		// The body is capped at maxLoginBody, so the whole form fits in memory and no
		// temporary file is written; RemoveAll is there should one ever be.
		c.Request.Body = body
		err := c.Request.ParseMultipartForm(maxLoginBody)
		if f := c.Request.MultipartForm; f != nil {
			defer func() { _ = f.RemoveAll() }()
		}
		if err != nil {
			if tooLarge(err) {
				return cr, errLoginTooLarge
			}
			return cr, errs.New(errs.Invalid, errs.CodeInvalidRequest, "malformed multipart form body")
		}
		cr.Username, cr.Password = c.Request.PostForm.Get("username"), c.Request.PostForm.Get("password")
	default:
		return cr, errs.New(errs.Invalid, errs.CodeInvalidRequest, "Content-Type must be application/json, application/x-www-form-urlencoded or multipart/form-data")
	}
	if strings.TrimSpace(cr.Username) == "" || cr.Password == "" {
		return cr, errs.New(errs.Invalid, errs.CodeInvalidRequest, "username and password are required")
	}
	return cr, nil
}

var errLoginTooLarge = errs.New(errs.TooLarge, errs.CodeTooLarge, "login body too large")

func tooLarge(err error) bool {
	var e *http.MaxBytesError
	return errors.As(err, &e)
}
