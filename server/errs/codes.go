package errs

// The catalogue: every error code Jetsocket answers with, defined once, as centrifuge's
// errors.go defines its errors. A code is the stable, machine-readable part of a refusal:
// the `error` of an HTTP body {error, message}, the `code` of an ack {ok:false, status,
// code, error}, of jetsocket:error and jetsocket:subscription_error, the message of a
// socket.io CONNECT_ERROR. The kind (and so the status) is chosen where the error is
// made (New); the message says what happened there.
//
// No other package spells a code as a string literal (codes_test.go checks the server's
// sources), and every code here has its row in docs/errors.md (the same test file).
// Other packages may name a code under their own name (protocol's catalogue, socket's
// jetsocket:error codes) only by reference to these.

// Any HTTP route.
const (
	CodeInternal         = "internal_error"     // 500: a fault of ours, logged; never the detail
	CodeInvalidRequest   = "invalid_request"    // 400: a body or query that cannot be taken
	CodeNotFound         = "not_found"          // 404: no such route
	CodeMethodNotAllowed = "method_not_allowed" // 405: a method the route does not take
	CodeTooLarge         = "too_large"          // 413: a request body over its route's limit
	CodeRequestTimeout   = "request_timeout"    // 408: the body did not arrive within REQUEST_BODY_TIMEOUT
	CodeRateLimited      = "rate_limited"       // 429: logins, subscribes, client events, polling handoff, socket input
	CodeShuttingDown     = "shutting_down"      // 503: the server is stopping
	CodeOriginNotAllowed = "origin_not_allowed" // 403: ALLOWED_ORIGINS does not list the Origin
)

// Credentials and tokens.
const (
	CodeInvalidCredentials = "invalid_credentials"  // 401: /login's unknown user or wrong password alike
	CodeInvalidToken       = "invalid_token"        // 401: a JWT refused (handshake, CONNECT, refresh, Bearer routes)
	CodeTokenExpired       = "token_expired"        // 401: the connection's token expired (subscribe)
	CodeTooManyConnections = "too_many_connections" // 429: MAX_CONNECTIONS_PER_USER or _PER_IP
	CodeNoSubject          = "no_subject"           // 403: a token naming no user, where one is needed (/pusher/user-auth)
)

// The Pusher-compatible HTTP API.
const (
	CodeInvalidSignature = "invalid_signature" // 401: a request not signed as Pusher signs
	CodeUnknownApp       = "unknown_app"       // 403: another app id
	CodePayloadTooLarge  = "payload_too_large" // 413: event data over MAX_PAYLOAD_BYTES (API and client events)
	CodeHistoryOff       = "history_off"       // 404: the history of a channel that keeps none (docs/history.md)
)

// The socket.io endpoint's HTTP refusals (Engine.IO, either version).
const (
	CodeJSONPNotSupported   = "jsonp_not_supported"  // 400: JSONP polling
	CodeUnsupportedProtocol = "unsupported_protocol" // 400: an EIO other than 3 or 4
	CodeInvalidSid          = "invalid_sid"          // 400: an unknown or closed session id
	CodeInvalidTransport    = "invalid_transport"    // 400: a transport other than polling or websocket
	CodeTransportMismatch   = "transport_mismatch"   // 400: a request on the transport its session has left
	CodeUpgradeInProgress   = "upgrade_in_progress"  // 400: a second upgrade of one session
	CodeUpgradeBacklogFull  = "upgrade_backlog_full" // 413: more posted during an upgrade than is held
	CodeBadPayload          = "bad_payload"          // 400: a polling body the Engine.IO decoder refuses
	CodeBadRequest          = "bad_request"          // 400: any other Engine.IO request the engine refuses
	CodeTransportError      = "transport_error"      // 5xx: go-socket.io's own failures, with their status
	CodeInboundQueueFull    = "inbound_queue_full"   // 429: v4 polling posted more than the session holds unread
)

// Socket packets (jetsocket:error, and the ack of an event sent with one).
const (
	CodeBadPacket          = "bad_packet"           // a packet that does not parse
	CodeFrameTooLarge      = "frame_too_large"      // a frame over MAX_PAYLOAD_BYTES + 4 KiB
	CodeBinaryNotSupported = "binary_not_supported" // binary packets and frames
	CodeUnknownEvent       = "unknown_event"        // 404: no handler has this event name
	CodeInvalidPayload     = "invalid_payload"      // 400: an event's payload not of its type
	CodeConnectionClosed   = "connection_closed"    // 503: an event on a connection that has ended (or not yet connected)
)

// Channels: subscribes, client events, delegated authorization and sign-in.
const (
	CodeInvalidChannel          = "invalid_channel"           // 400: not a valid channel name
	CodeInvalidChannelData      = "invalid_channel_data"      // 400: a signed presence subscribe's channel_data
	CodeInvalidUserData         = "invalid_user_data"         // 400: jetsocket:signin's user_data
	CodeInvalidEvent            = "invalid_event"             // 400: a client event name over 200 characters
	CodeForbidden               = "forbidden"                 // 403: no rule allows it
	CodeInvalidAuth             = "invalid_auth"              // 403: a delegated signature that does not verify
	CodeInternalChannel         = "internal_channel"          // 403: a name starting with #
	CodeClientEventsForbidden   = "client_events_forbidden"   // 403: client events on public or encrypted channels
	CodeNotSubscribed           = "not_subscribed"            // 403: a client event on a channel not subscribed
	CodeTooManySubscriptions    = "too_many_subscriptions"    // 429: MAX_SUBSCRIPTIONS
	CodePresenceFull            = "presence_full"             // 429: PRESENCE_MAX_MEMBERS
	CodeEncryptionNotConfigured = "encryption_not_configured" // 500: private-encrypted- without ENCRYPTION_MASTER_KEY (503 at /pusher/auth)
	CodeInvalidSocketID         = "invalid_socket_id"         // 400: a socket_id not of Pusher's form (/pusher/auth, /pusher/user-auth)
	CodeAuthRequired            = "auth_required"             // 401: a Pusher-protocol subscribe to a private channel without auth
	CodeSigninRequired          = "signin_required"           // 401: a Pusher-protocol subscribe before pusher:signin (PUSHER_REQUIRE_SIGNIN)
)
