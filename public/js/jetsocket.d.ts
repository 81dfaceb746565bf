// Type declarations for the Jetsocket JS client (public/js/jetsocket.js).

export type ConnectionState =
  | 'initialized' | 'connecting' | 'connected' | 'unavailable' | 'failed' | 'disconnected';

/** A JWT, or a function (sync or async) called before every connect, reconnect and refresh. */
export type TokenSource = string | (() => string | Promise<string>);

/** Metadata passed as the second argument of event callbacks. */
export interface EventMetadata {
  channel?: string;
  /** The sender's user id, on client events. */
  user_id?: string;
  /** The publication's place in its channel's history (1, 2, 3...), when the server keeps one. */
  offset?: number;
  /** The channel history's epoch the offset belongs to. */
  epoch?: string;
}

/** Where a publication sits in its channel's history. */
export interface Position { epoch: string; offset: number }

/**
 * The channel event `jetsocket:recovery`, fired after a re-subscribe that sent the
 * channel's last position (every reconnect, a gap): recovered is true when every missed
 * publication was delivered (replayed of them, through the usual callbacks, before this
 * event); false when the server could not replay them (history trimmed, expired, or lost):
 * the app should refetch its state.
 */
export interface RecoveryEvent { recovered: boolean; replayed: number }

export type EventCallback = (data: any, metadata: EventMetadata) => void;
export type GlobalCallback = (event: string, data: any, metadata?: EventMetadata) => void;

/** Errors on channels, the connection and sign-in. */
export interface JetsocketError {
  /** TerminatedError: the server ended the connection (terminate_connections); the client stays disconnected. */
  type: 'AuthError' | 'TransportError' | 'TimeoutError' | 'TokenError' | 'RefreshError' | 'TerminatedError' | 'SubscriptionError' | 'SigninError';
  /** HTTP-like status: 400, 401, 403, 429, 500, or the auth endpoint's status; 0 when none. */
  status: number;
  code: string;
  error: string;
}

export interface AuthEndpoint {
  /** POSTed form-encoded socket_id and channel_name (or socket_id for sign-in). */
  endpoint?: string;
  headers?: Record<string, string> | (() => Record<string, string>);
  params?: Record<string, string>;
  /** Replaces the HTTP call: call back with {auth, channel_data?, shared_secret?} or {auth, user_data}. */
  customHandler?: (
    params: { socketId: string; channelName?: string },
    callback: (error: Error | null, data: { auth: string; channel_data?: string; shared_secret?: string; user_data?: string } | null) => void,
  ) => void;
}

export interface Options {
  /** Server origin, e.g. https://rt.example.com. Default: the page's origin. */
  host?: string;
  token: TokenSource;
  channelAuthorization?: AuthEndpoint;
  userAuthentication?: AuthEndpoint;
  /** socket.io path, default /socket.io. */
  path?: string;
  /** socket.io-client transports, default ['polling', 'websocket']. */
  transports?: string[];
  /** socket.io-client's io() (4.x or 3.x, or 2.x; the transport follows the version); default the global io or require('socket.io-client'). */
  io?: (...args: any[]) => any;
  /** tweetnacl, for encrypted channels; default the global nacl or require('tweetnacl'). */
  nacl?: any;
  /** fetch for the auth endpoints; default the global fetch. */
  fetch?: typeof fetch;
  /** Connect at once (default true). */
  autoConnect?: boolean;
  connectTimeoutMs?: number;
  ackTimeoutMs?: number;
  /** First wait after a failed attempt, or after a connection that dropped soon after it was up; doubles up to retryMaxMs. */
  retryMinMs?: number;
  retryMaxMs?: number;
  refreshMarginMs?: number;
  /** The token function is asked for a refresh at most this often (default 10000). */
  minRefreshIntervalMs?: number;
  /** A connection up this long resets the reconnect backoff (default 30000). */
  stableAfterMs?: number;
}

export interface Member { id: string; info: any }

export interface Members {
  count: number;
  me: Member | null;
  myID: string | null;
  members: Record<string, any>;
  each(fn: (member: Member) => void): void;
  get(id: string): Member | null;
}

export interface Bindable<Self> {
  bind(event: string, callback: EventCallback, context?: any): Self;
  unbind(event?: string, callback?: EventCallback): Self;
  bind_global(callback: GlobalCallback): Self;
  unbind_global(callback?: GlobalCallback): Self;
}

export interface Channel extends Bindable<Channel> {
  readonly name: string;
  subscribed: boolean;
  subscriptionPending: boolean;
  /** Presence channels only. */
  members?: Members;
  /** The last publication delivered on this channel, sent as `since` on re-subscribes; null before any. */
  position: Position | null;
  /**
   * The latest count of `pusher:subscription_count` ({subscription_count}, with
   * SUBSCRIPTION_COUNT on the server); null before any. Cache channels (`cache-`,
   * `private-cache-`, `presence-cache-`, `private-encrypted-cache-`) fire their last event
   * after the subscribe, or `pusher:cache_miss` ({}) when there is none, as in pusher-js.
   */
  subscriptionCount: number | null;
  subscribe(): Channel;
  unsubscribe(): void;
  /** client-* events on private and presence channels; throws on public and encrypted ones. */
  trigger(event: string, data?: any): Promise<{ ok: boolean; status?: number; code?: string; error?: string }>;
}

export interface Connection extends Bindable<Connection> {
  state: ConnectionState;
  socket_id: string | null;
  user_id: string | null;
  /** Why the last attempt failed or why the state is failed. */
  reason: JetsocketError | null;
  ping(): Promise<{ pong: boolean; time_ms: number }>;
  /** 'polling' or 'websocket' while connected. */
  transportName(): string;
}

declare class Jetsocket implements Bindable<Jetsocket> {
  constructor(key: string, options: Options);
  readonly key: string;
  readonly connection: Connection;
  user?: { id: string };
  connect(): this;
  disconnect(): this;
  subscribe(channelName: string): Channel;
  unsubscribe(channelName: string): void;
  channel(channelName: string): Channel | undefined;
  allChannels(): Channel[];
  /** Signs the connection in with userAuthentication, now and after every reconnect. */
  signin(): Promise<{ ok: true; user_id: string } | null>;
  bind(event: string, callback: EventCallback, context?: any): this;
  unbind(event?: string, callback?: EventCallback): this;
  bind_global(callback: GlobalCallback): this;
  unbind_global(callback?: GlobalCallback): this;
  static readonly STATES: ConnectionState[];
  static tokenExpiry(token: string): number;
}

export default Jetsocket;
export { Jetsocket };
