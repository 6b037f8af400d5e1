// Types of Northstar's browser client (northstar.js). The guide is README.md.

/** A StreamEvent v1 (docs/protocol.md). */
export interface StreamEvent<Data = any> {
  v: 1;
  id: string;
  stream: string;
  seq: number;
  type: string;
  ts: string;
  actor: string;
  trace?: string;
  rev?: number;
  data: Data;
}

/**
 * Every failure the client reports. `code` is the server's stable code when the
 * server answered (`rev_conflict`, `not_found`, `unauthorized`, ...), with its
 * HTTP `status`; otherwise one of the client's own codes, with `status` null:
 * `invalid_option`, `invalid_stream`, `invalid_token`, `invalid_patch`,
 * `patch_failed` (a change that does not apply locally), `already_subscribed`,
 * `connection_lost` (no answer; a write that was not retry-safe may or may not
 * have applied), `connection_failed`, `websocket_refused`, `timeout`, `closed`,
 * `command_cannot_apply` (a rebase could not make the command fit the new head),
 * `closed_<close code>` (the reason of a reconnect after the socket closed).
 */
export class NorthstarError extends Error {
  readonly name: 'NorthstarError';
  readonly code: string;
  readonly status: number | null;
  /**
   * The server's id for the request a REST answer refused (its `x-request-id`):
   * the server's log lines for that request carry it. Null when the error did
   * not come from a REST answer.
   */
  readonly requestId: string | null;
  /** The error's other members: `head_rev`, `missed`, `first_seq`, `op_index`, `close_code`, ... */
  readonly details: Record<string, unknown>;
  constructor(code: string, message: string, extra?: Record<string, unknown>);
  static fromServer(error: { code?: string; message?: string; [member: string]: unknown } | undefined, status: number | null,
                    requestId?: string | null): NorthstarError;
}

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';
export type Transport = 'ws' | 'sse';

export interface ClientOptions {
  /** The server's address, `https://realtime.example.com`. */
  url: string;
  /**
   * Returns a credential (a JWT, or an API key). Called at start, again before
   * a JWT's `exp`, and after a 401 or an auth close code. Your app mints or
   * fetches it; the client never stores it anywhere but in memory.
   */
  token: () => Promise<string>;
  /** In order of preference; default `['ws', 'sse']` (SSE where WebSocket is refused). */
  transports?: Transport[];
  /** Reconnect backoff: full jitter, base doubling per attempt up to max. Default 250 ms and 10 s. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** A WebSocket request that is not retry-safe fails with `timeout` after this long. Default 15 s. */
  requestTimeoutMs?: number;
  /** A JWT is replaced this long before its `exp` (at most a third of its life). Default 30 s. */
  refreshBeforeExpiryMs?: number;
  /**
   * At most this long of incoming messages is handled per browser task
   * (default 8 ms), so a burst leaves room to draw frames.
   */
  frameBudgetMs?: number;
  /** A WebSocket implementation, for environments without a global one. */
  WebSocket?: typeof WebSocket;
}

export interface StateChange {
  state: ConnectionState;
  /**
   * Why it is not open: the last failure, or null. `too_many_user_connections`
   * (status 429): the user's other tabs and devices hold every connection the
   * server allows one user; the client retries, with backoff, on the same
   * transport, until one of them closes. `too_many_tenant_connections`
   * (status 429): the app's users together hold every connection the
   * server allows one tenant; the same.
   */
  reason: NorthstarError | null;
  transport: Transport;
}

export interface Gap {
  stream: string;
  /** The seq the client asked to resume after. */
  requestedAfter: number;
  /** The first seq the log still holds; the stream goes on from there. */
  firstSeq: number;
  /** The REST path of the resource to read again (its current state), or null. */
  refetch: string | null;
}

export interface StreamEnd {
  /** `complete` (a replay), or a server code the client could not resume from. */
  code: string;
  lastSeq: number;
  message?: string;
}

export interface SubscribeOptions {
  /** Deliver events after this seq (default 0: from the start). */
  after?: number;
  /** Each event once, in seq order, across reconnects. */
  onEvent?: (event: StreamEvent, subscription: Subscription) => void;
  /** The log no longer holds what was asked for: re-read the resource, events go on from `firstSeq`. */
  onGap?: (gap: Gap, subscription: Subscription) => void;
  /** The stream ended for good (a replay completed). */
  onEnd?: (end: StreamEnd, subscription: Subscription) => void;
  /** The server refused the stream (`not_found`, `forbidden`, ...). */
  onError?: (error: NorthstarError, subscription: Subscription) => void;
  /** `replay:` streams only. */
  replay?: { speed?: number; from_ms?: number; pace?: 'none' | 'original' };
}

export class Subscription {
  readonly stream: string;
  /** The last seq delivered to `onEvent`. */
  readonly lastSeq: number;
  readonly closed: boolean;
  unsubscribe(): void;
  pause(): Promise<number>;
  resume(): Promise<void>;
}

export type Operation = 'chat.post' | 'canvas.command' | 'gesture.start' | 'gesture.append' | 'gesture.end';

export class Client {
  constructor(options: ClientOptions);
  readonly url: string;
  readonly state: ConnectionState;
  readonly reason: NorthstarError | null;
  readonly transport: Transport;
  connect(): Promise<void>;
  /** Resolves once open; rejects if the client is closed first. */
  ready(): Promise<void>;
  onStateChange(listener: (change: StateChange) => void): () => void;
  close(): void;
  /** The current credential (from the token function when needed). */
  token(options?: { force?: boolean }): Promise<string>;
  /** Follows `chat:<id>`, `canvas:<id>`, `gesture:<id>` or `replay:<gesture id>`. */
  subscribe(stream: string, options?: SubscribeOptions): Subscription;
  /**
   * A kernel operation on whichever transport is up; `retry` only for
   * retry-safe bodies. A write refused 429 `rate_limited` (nothing of it
   * stored) is sent again after the server's `retry_after_ms`, whatever `retry`.
   */
  call(operation: Operation, ids: { threadId?: string; canvasId?: string; gestureId?: string }, body: object,
       options?: { retry?: boolean }): Promise<{ status: number; result: any }>;
  /** A REST request with the credential (one retry with a fresh one after a 401; after a 429 `rate_limited`, again once the wait it names is over). */
  rest(method: string, path: string, body?: unknown, options?: { retry?: boolean }): Promise<{ status: number; body: any }>;
}

/** Makes a client and starts connecting it. */
export function connect(options: ClientOptions): Client;

export interface ChatMessage {
  clientMessageId: string | null;
  text: string;
  data?: unknown;
  actor: string | null;
  /** null while on its way. */
  seq: number | null;
  pending: boolean;
  /** Set when the server refused it. */
  error: NorthstarError | null;
  event: StreamEvent | null;
}

export interface ThreadOptions {
  after?: number;
  onMessage?: (message: ChatMessage) => void;
  /** The whole list: stored messages by seq, then those on their way. */
  onChange?: (messages: ChatMessage[]) => void;
  onGap?: (gap: Gap) => void;
  onEnd?: (end: StreamEnd) => void;
  onError?: (error: NorthstarError) => void;
}

export class Thread {
  constructor(client: Client, threadId: string, options?: ThreadOptions);
  readonly threadId: string;
  readonly messages: ChatMessage[];
  /** Retry-safe: one `client_message_id` across retries and reconnects. */
  post(text: string, options?: { data?: unknown; clientMessageId?: string }): Promise<ChatMessage>;
  close(): void;
}

export type JSONPatch = Array<{ op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test'; path: string; from?: string; value?: unknown }>;

export interface Revision {
  rev: number;
  ops: JSONPatch;
  command_id: string;
  actor?: string;
}

export interface CanvasOptions<Doc = any> {
  /**
   * Makes a command that lost a race fit the new head. Return the new ops, or
   * null when it no longer makes sense (the command is then rejected with
   * `command_cannot_apply`). Default: run the command's intent again, or keep
   * its ops if they still apply.
   */
  rebase?: (input: { ops: JSONPatch; intent: ((document: Doc) => JSONPatch) | null; document: Doc; rev: number;
                     missed: Revision[] }) => JSONPatch | null;
  onChange?: (state: { rev: number; document: Doc; view: Doc; pending: number }) => void;
  onRejected?: (rejected: { commandId: string; ops: JSONPatch; error: NorthstarError }) => void;
  /** Ink as it is drawn: gesture events of the canvas stream. */
  onInk?: (ink: { type: 'started' | 'samples' | 'ended'; gestureId: string; actor: string; samples: GestureSample[];
                  firstSample: number | null; event: StreamEvent }) => void;
  onGap?: (gap: Gap) => void;
  onEnd?: (end: StreamEnd) => void;
  onError?: (error: NorthstarError) => void;
}

export class Canvas<Doc = any> {
  constructor(client: Client, canvasId: string, options?: CanvasOptions<Doc>);
  readonly canvasId: string;
  /** Resolves once the document is loaded and followed. */
  readonly ready: Promise<void>;
  /** The server's revision and document, as confirmed. */
  readonly rev: number | null;
  readonly document: Doc | null;
  /** The document with the pending commands applied: what the user sees. */
  readonly view: Doc | null;
  readonly pending: ReadonlyArray<{ commandId: string; ops: JSONPatch }>;
  /** Ops, or an intent run against the document (again after a conflict). */
  command(change: JSONPatch | ((document: Doc) => JSONPatch), options?: { commandId?: string }): Promise<{ rev: number; replayed: boolean }>;
  readRevision(rev: number): Promise<{ rev: number; document: Doc }>;
  close(): void;
}

export interface GestureSample {
  t_ms: number;
  x: number;
  y: number;
  pointer: number;
  phase: 'down' | 'move' | 'up' | 'cancel';
  pressure?: number;
  tilt_x?: number;
  tilt_y?: number;
  button?: number;
}

export interface Gesture {
  gesture_id: string;
  canvas_id: string;
  stream: string;
  state: 'open' | 'ended';
  created_by: string;
  created_at: string;
  sample_count: number;
  pointer_count: number;
  duration_ms: number;
  base_rev: number;
}

export interface CaptureOptions {
  /** A batch leaves this long after its first sample (default 50 ms)... */
  batchMs?: number;
  /** ...or once it holds this many (default 200; the server's limit is `limits.max_gesture_batch_samples`). */
  maxBatchSamples?: number;
  /** The revision the gesture is drawn over (default: the head). */
  baseRev?: number;
  onGesture?: (gesture: Gesture) => void;
  onEnd?: (gesture: Gesture) => void;
  onError?: (error: NorthstarError) => void;
}

export class GestureCapture {
  constructor(client: Client, canvasId: string, element: Element, options?: CaptureOptions);
  stop(): void;
}

export interface ReplayOptions {
  /** 0.1 to 16, or 0 for everything at once. Default 1. */
  speed?: number;
  fromMs?: number;
  onSample?: (sample: GestureSample, event: StreamEvent<GestureSample>) => void;
  onEnd?: (end: StreamEnd) => void;
  onError?: (error: NorthstarError) => void;
  onStateChange?: (state: 'idle' | 'playing' | 'paused' | 'ended') => void;
}

export class ReplayPlayer {
  constructor(client: Client, gestureId: string, options?: ReplayOptions);
  readonly state: 'idle' | 'playing' | 'paused' | 'ended';
  readonly speed: number;
  /** t_ms of the last sample played. */
  readonly position: number;
  play(): Promise<void>;
  pause(): Promise<void>;
  seek(ms: number): Promise<void> | undefined;
  setSpeed(speed: number): void;
  close(): void;
}

/** RFC 6902, all or nothing; throws a NorthstarError `patch_failed`. */
export function applyPatch<Doc>(document: Doc, ops: JSONPatch): Doc;
