// The connection to one Northstar server: one multiplexed WebSocket (`/ws`),
// or one EventSource per stream plus REST where WebSocket is refused. It owns
// the credential, the reconnects and the streams; chat, canvas and gesture
// helpers are built on its three calls: `subscribe`, `call` and `rest`.

import { NorthstarError } from './errors.js';
import { Inbox } from './inbox.js';
import { Subscription, splitStream } from './subscription.js';

// The SSE event names the server sends; EventSource only reports names it was told.
const SSE_EVENT_TYPES = ['chat.message', 'canvas.committed', 'gesture.started', 'gesture.samples', 'gesture.ended',
  'gesture.sample', 'stream.gap', 'stream.end'];

// Kernel operations (docs/protocol.md) as a WebSocket message and as a REST request.
const OPERATIONS = {
  'chat.post': {
    ws: (ids, body) => ({ type: 'post', thread_id: ids.threadId, message: body }),
    rest: ids => `/v1/threads/${ids.threadId}/messages`,
  },
  'canvas.command': {
    ws: (ids, body) => ({ type: 'command', canvas_id: ids.canvasId, command: body }),
    rest: ids => `/v1/canvases/${ids.canvasId}/commands`,
  },
  'gesture.start': {
    ws: (ids, body) => ({ ...body, type: 'gesture.start', canvas_id: ids.canvasId }),
    rest: ids => `/v1/canvases/${ids.canvasId}/gestures`,
  },
  'gesture.append': {
    ws: (ids, body) => ({ type: 'gesture.samples', gesture_id: ids.gestureId, samples: body.samples }),
    rest: ids => `/v1/canvases/${ids.canvasId}/gestures/${ids.gestureId}/samples`,
  },
  'gesture.end': {
    ws: ids => ({ type: 'gesture.end', gesture_id: ids.gestureId }),
    rest: ids => `/v1/canvases/${ids.canvasId}/gestures/${ids.gestureId}/end`,
  },
};

// WebSocket close codes the server uses (docs/protocol.md#limits-and-close-codes).
const CLOSE_GOING_AWAY = 1001;     // the server is draining or restarting
const CLOSE_TOKEN_EXPIRED = 4001;
const CLOSE_SLOW_CONSUMER = 4008;

export class Client {
  /** @param {import('../northstar').ClientOptions} options */
  constructor(options) {
    if (!options || typeof options.url !== 'string' || !/^https?:\/\//.test(options.url)) {
      throw new NorthstarError('invalid_option', 'url must be the server\'s http(s):// address');
    }
    if (typeof options.token !== 'function') {
      throw new NorthstarError('invalid_option', 'token must be an async function that returns a credential');
    }
    this.url = options.url.replace(/\/+$/, '');
    this.options = {
      transports: ['ws', 'sse'], backoffBaseMs: 250, backoffMaxMs: 10_000, requestTimeoutMs: 15_000,
      refreshBeforeExpiryMs: 30_000, frameBudgetMs: 8, ...options,
    };
    if (!this.options.transports.length || this.options.transports.some(t => t !== 'ws' && t !== 'sse')) {
      throw new NorthstarError('invalid_option', 'transports must list "ws" and/or "sse"');
    }
    this.state = 'closed';
    this.reason = null;
    this.transport = this.options.transports[0];
    this._listeners = new Set();
    this._subscriptions = new Set();
    this._pending = new Map();        // request id → entry (WebSocket only)
    this._nextRequest = 1;
    this._attempt = 0;                // reconnects since the last success: the backoff's exponent
    this._token = null;
    this._tokenExpiry = null;
    this._tokenPromise = null;
    this._refreshTimer = null;
    this._reconnectTimer = null;
    this._socket = null;
    this._inbox = new Inbox(this.options.frameBudgetMs);
  }

  // ---- connection state ----------------------------------------------------

  /** Starts connecting; resolves once open. */
  connect() {
    if (this.state === 'closed') {
      this._setState('connecting', null);
      this._open();
    }
    return this.ready();
  }

  /** Resolves when the client is open (at once if it is). Rejects if it is closed first. */
  ready() {
    if (this.state === 'open') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = this.onStateChange(({ state, reason }) => {
        if (state === 'open') { off(); resolve(); }
        if (state === 'closed') { off(); reject(reason ?? new NorthstarError('closed', 'the client was closed')); }
      });
    });
  }

  /** Calls `listener({state, reason, transport})` on every change; returns the function that stops it. */
  onStateChange(listener) {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  /** Closes everything; pending calls fail with `closed`. */
  close() {
    if (this.state === 'closed') return;
    clearTimeout(this._reconnectTimer);
    clearTimeout(this._refreshTimer);
    this._setState('closed', new NorthstarError('closed', 'the client was closed'));
    const socket = this._socket;
    this._socket = null;
    socket?.close(1000);
    for (const subscription of this._subscriptions) this._closeSource(subscription);
    for (const entry of this._pending.values()) this._settle(entry, new NorthstarError('closed', 'the client was closed'));
  }

  _setState(state, reason) {
    if (this.state === state && this.reason === reason) return;
    this.state = state;
    this.reason = reason;
    for (const listener of [...this._listeners]) {
      try { listener({ state, reason, transport: this.transport }); } catch (error) { queueMicrotask(() => { throw error; }); }
    }
  }

  // ---- the credential --------------------------------------------------------

  /** The current credential, from the app's token function when there is none or it is about to expire. */
  async token({ force = false } = {}) {
    const fresh = this._token && (this._tokenExpiry === null || this._tokenExpiry - Date.now() > 1000);
    if (!force && fresh) return this._token;
    this._tokenPromise ??= (async () => {
      const token = await this.options.token();
      if (typeof token !== 'string' || token === '') {
        throw new NorthstarError('invalid_token', 'the token function must return a non-empty string');
      }
      this._token = token;
      this._tokenExpiry = jwtExpiry(token);
      this._scheduleRefresh();
      return token;
    })().finally(() => { this._tokenPromise = null; });
    return this._tokenPromise;
  }

  // Before the credential expires, a fresh one replaces it on the open socket
  // (`auth`), so no stream ends. SSE streams end at expiry and reopen with it.
  _scheduleRefresh() {
    clearTimeout(this._refreshTimer);
    if (this._tokenExpiry === null || this.state === 'closed') return;
    const left = this._tokenExpiry - Date.now();
    const lead = Math.min(this.options.refreshBeforeExpiryMs, left / 3);
    this._refreshTimer = setTimeout(async () => {
      try {
        const token = await this.token({ force: true });
        if (this._socketOpen()) {
          await this._send({ type: 'auth', token }, { timeout: true });
        }
      } catch (error) {
        // An `auth` the server refused: start again with a fresh connection.
        this._socket?.close(4000, 'reauthenticate');
      }
    }, Math.max(0, left - lead));
  }

  // ---- opening and reopening -------------------------------------------------

  async _open() {
    clearTimeout(this._reconnectTimer);
    let token;
    try {
      token = await this.token();
    } catch (error) {
      this._retry(error instanceof NorthstarError ? error : new NorthstarError('token_failed', String(error?.message ?? error)));
      return;
    }
    if (this.state === 'closed') return;
    if (this.transport === 'ws') this._openSocket(token);
    else this._openStreams();
  }

  /** Reconnects after a jittered, growing delay ("full jitter": no stampede when a server comes back). */
  _retry(reason) {
    if (this.state === 'closed') return;
    const ceiling = Math.min(this.options.backoffMaxMs, this.options.backoffBaseMs * 2 ** this._attempt);
    this._attempt += 1;
    this._reopenAfter(Math.random() * ceiling, reason);
  }

  /** Reconnects at once, without the backoff penalty (the server said it is restarting). */
  _reconnectNow(reason) {
    if (this.state === 'closed') return;
    this._attempt = 0;
    this._reopenAfter(Math.random() * this.options.backoffBaseMs / 2, reason);
  }

  _reopenAfter(delay, reason) {
    this._setState('reconnecting', reason);
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = setTimeout(() => this._open(), delay);
  }

  // A WebSocket that never opened says nothing of why. A REST request tells
  // the cases apart: no server (back off), a refused credential (a fresh one,
  // then back off), a server that answers but cannot take us now (back off),
  // or a server that answers as usual but refuses WebSocket (use SSE).
  async _diagnose() {
    const { status, error } = await this._probe();
    if (status === 0) return this._retry(new NorthstarError('connection_failed', 'the server is unreachable'));
    if (status === 401) {
      await this.token({ force: true }).catch(() => {});
      return this._retry(new NorthstarError('unauthorized', 'the server refused the credential'));
    }
    // The user's other tabs and devices may hold every connection the server
    // allows one user: wait for one to close, on WebSocket still.
    const limit = await this._connectionLimit();
    if (limit) return this._retry(limit);
    // Any other answer than the probe's usual 404 (over the read rate, a node
    // that is full or whose store is down) says the server cannot take this
    // request now, not that it refuses WebSocket: back off, on WebSocket still.
    if (status !== 404) return this._retry(error);
    // Once more before giving up on WebSocket: the server may have come up
    // between the refused socket and the probe.
    this._refusals = (this._refusals ?? 0) + 1;
    if (this._refusals < 2) return this._reconnectNow(new NorthstarError('websocket_refused', 'WebSocket refused; trying again'));
    if (this.options.transports.includes('sse')) {
      this.transport = 'sse';
      for (const entry of [...this._pending.values()]) this._moveToREST(entry);
      return this._reconnectNow(new NorthstarError('websocket_refused', 'WebSocket is refused here; using Server-Sent Events'));
    }
    return this._retry(new NorthstarError('websocket_refused', 'the server answers but refuses WebSocket'));
  }

  /**
   * An authenticated request that changes nothing: its HTTP status (0 when
   * there was no answer) and, for any but the usual 404, the server's error.
   */
  async _probe() {
    try {
      const token = await this.token();
      // A well-formed id that no thread has: 404 once the credential is accepted.
      const response = await fetch(`${this.url}/v1/threads/th_aaaaaaaaaaaaaaaaaaaaaaaaaa`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if (response.status === 404) return { status: 404, error: null };
      const body = await response.json().catch(() => null);
      const requestId = response.headers.get('x-request-id');
      const error = body?.error ? NorthstarError.fromServer(body.error, response.status, requestId)
        : new NorthstarError('http_error', `the server answered ${response.status}`, { status: response.status, requestId });
      return { status: response.status, error };
    } catch {
      return { status: 0, error: null };
    }
  }

  /**
   * The server's refusal when this user holds as many connections as it
   * allows one user (429 `too_many_user_connections`), or its tenant as
   * many as it allows one tenant (429 `too_many_tenant_connections`); null
   * otherwise.
   * Neither a refused WebSocket nor an EventSource says why it failed, but
   * a plain request to the SSE route of a thread that does not exist does:
   * the server counts the connection before it looks for the thread, so it
   * answers 429 at the limit and 404 below it. Asked only once a REST
   * request accepted the credential.
   */
  async _connectionLimit() {
    try {
      const query = new URLSearchParams({ access_token: await this.token() });
      const response = await fetch(`${this.url}/sse/chat/th_aaaaaaaaaaaaaaaaaaaaaaaaaa?${query}`);
      const body = await response.json().catch(() => null);
      const limits = ['too_many_user_connections', 'too_many_tenant_connections'];
      if (response.status !== 429 || !limits.includes(body?.error?.code)) return null;
      return NorthstarError.fromServer(body.error, 429);
    } catch {
      return null;
    }
  }

  // ---- WebSocket ---------------------------------------------------------------

  _openSocket(token) {
    const Socket = this.options.WebSocket ?? globalThis.WebSocket;
    const url = this.url.replace(/^http/, 'ws') + '/ws';
    // A browser cannot set headers on a WebSocket: the credential rides in a subprotocol.
    const socket = new Socket(url, ['northstar.v1', `northstar.bearer.${token}`]);
    this._socket = socket;
    let opened = false;
    socket.onopen = () => {
      if (this._socket !== socket) return;
      opened = true;
      this._attempt = 0;
      this._refusals = 0;
      this._setState('open', null);
      this._resumeOnSocket();
    };
    socket.onmessage = message => { if (this._socket === socket) this._inbox.push(() => this._onMessage(message.data)); };
    socket.onclose = close => {
      if (this._socket !== socket) return;
      this._socket = null;
      this._socketClosed(close.code, close.reason, opened);
    };
  }

  _socketOpen() {
    return this._socket?.readyState === 1;
  }

  /** After (re)opening: every stream resumes after its last seq, then unanswered writes go again. */
  _resumeOnSocket() {
    for (const subscription of this._subscriptions) {
      if (!subscription.paused) this._subscribeOnSocket(subscription);
    }
    for (const entry of this._pending.values()) {
      if (!entry.sent) this._transmit(entry);
    }
  }

  _socketClosed(code, reason, opened) {
    if (this.state === 'closed') return;
    // Writes the server may have applied are sent again only when retry-safe
    // (a message's client_message_id, a command's command_id); others fail.
    for (const entry of [...this._pending.values()]) {
      if (entry.retry) entry.sent = false;
      else if (entry.sent) this._settle(entry, new NorthstarError('connection_lost', 'the connection closed before the server answered'));
    }
    if (!opened) return void this._diagnose();
    const why = new NorthstarError(`closed_${code}`, reason || `the socket closed (${code})`, { close_code: code });
    if (code === CLOSE_GOING_AWAY || code === CLOSE_SLOW_CONSUMER) return this._reconnectNow(why);
    if (code === CLOSE_TOKEN_EXPIRED) {
      return void this.token({ force: true }).then(() => this._reconnectNow(why), error => this._retry(error));
    }
    this._retry(why);
  }

  _onMessage(text) {
    let message;
    try { message = JSON.parse(text); } catch { return; }
    const subscription = message.stream !== undefined && this._find(message.stream);
    switch (message.type) {
      case 'event': return subscription && subscription._event(message.event);
      case 'gap': return subscription && subscription._gap(message.requested_after, message.first_seq);
      case 'end': return subscription && this._streamEnded(subscription, message.code, message.last_seq, message.message);
      default: {
        const entry = this._pending.get(String(message.id));
        if (!entry) return;
        if (message.type === 'error' && message.error?.code === 'rate_limited') this._sendAgainLater(entry, message.error);
        else if (message.type === 'error') this._settle(entry, NorthstarError.fromServer(message.error, message.status ?? null));
        else this._settle(entry, null, message);
      }
    }
  }

  /** Sends one request on the socket; resolves with its answer. */
  _send(message, { retry = false, timeout = !retry, rest = null } = {}) {
    return new Promise((resolve, reject) => {
      const id = `r${this._nextRequest++}`;
      const entry = { id, message: { ...message, id }, retry, timeout, rest, resolve, reject, sent: false, timer: null };
      this._pending.set(id, entry);
      if (this.transport === 'sse' && rest) this._moveToREST(entry);
      else if (this._socketOpen()) this._transmit(entry);
      // Otherwise it waits for the socket to open (`_resumeOnSocket`).
    });
  }

  _transmit(entry) {
    entry.sent = true;
    this._socket.send(JSON.stringify(entry.message));
    if (entry.timeout) {
      clearTimeout(entry.timer);
      entry.timer = setTimeout(() => this._settle(entry, new NorthstarError('timeout', `no answer in ${this.options.requestTimeoutMs} ms`)),
        this.options.requestTimeoutMs);
    }
  }

  /**
   * A write the server refused for its rate (429 `rate_limited`): nothing of
   * it was stored, so any write, retry-safe or not, goes again once the wait
   * the server named is over (or at once on a new socket, which resends what
   * is unsent).
   */
  _sendAgainLater(entry, error) {
    entry.sent = false;
    setTimeout(() => {
      if (this._pending.has(entry.id) && !entry.sent && this._socketOpen()) this._transmit(entry);
    }, rateLimitWait(error));
  }

  _settle(entry, error, answer) {
    if (!this._pending.delete(entry.id)) return;
    clearTimeout(entry.timer);
    if (error) entry.reject(error); else entry.resolve(answer);
  }

  /** A write waiting for the socket, now that SSE is used: it goes over REST instead. */
  _moveToREST(entry) {
    if (!entry.rest || entry.sent) return;
    this._pending.delete(entry.id);
    this.rest('POST', entry.rest.path, entry.rest.body, { retry: entry.retry })
      .then(({ status, body }) => entry.resolve({ status, result: body }), entry.reject);
  }

  // ---- Server-Sent Events --------------------------------------------------------

  async _openStreams() {
    // The fallback is "open" once the server answers; each stream then opens on its own.
    const { status } = await this._probe();
    if (this.state === 'closed') return;
    if (status === 0) return this._retry(new NorthstarError('connection_failed', 'the server is unreachable'));
    if (status === 401) {
      await this.token({ force: true }).catch(() => {});
      return this._retry(new NorthstarError('unauthorized', 'the server refused the credential'));
    }
    this._attempt = 0;
    this._setState('open', null);
    for (const subscription of this._subscriptions) {
      if (!subscription.paused && !subscription.transportState) this._openSource(subscription);
    }
  }

  async _openSource(subscription, attempt = 0) {
    let token;
    try {
      token = await this.token();
    } catch (error) {
      return this._retry(error);
    }
    if (subscription.closed || subscription.paused || this.state === 'closed') return;
    this._closeSource(subscription); // one EventSource per stream, whoever reopened it first
    const [kind, id] = splitStream(subscription.stream);
    const path = kind === 'replay' ? `/sse/gestures/${id}` : `/sse/${kind}/${id}`;
    const query = new URLSearchParams({ access_token: token, last_event_id: String(subscription.lastSeq) });
    if (kind === 'replay') {
      for (const [key, value] of Object.entries(replayQuery(subscription))) query.set(key, String(value));
    }
    const source = new EventSource(`${this.url}${path}?${query}`);
    subscription.transportState = source;
    const mine = () => subscription.transportState === source && !subscription.closed;
    source.onopen = () => { if (mine()) attempt = 0; };
    for (const type of SSE_EVENT_TYPES) {
      source.addEventListener(type, message => this._inbox.push(() => {
        if (!mine()) return;
        const data = JSON.parse(message.data);
        if (type === 'stream.gap') subscription._gap(data.requested_after, data.first_seq);
        else if (type === 'stream.end') {
          this._closeSource(subscription);
          this._streamEnded(subscription, data.reason, data.last_seq, data.message);
        } else subscription._event(data);
      }));
    }
    // The browser's own retry would reuse the old URL (and its old credential):
    // the client reopens the stream itself, after its last seq.
    source.onerror = async () => {
      if (!mine()) return;
      this._closeSource(subscription);
      const { status } = await this._probe();
      const limit = status === 404 ? await this._connectionLimit() : null;
      if (status === 401) await this.token({ force: true }).catch(() => {});
      else if (limit) this._setState('reconnecting', limit);  // back off until another connection closes
      else if (status === 404 || status === 403) {
        // The server answers but this stream is gone or not ours any more: say so.
        const check = await this.rest('GET', refetchPath(subscription.stream) ?? '/v1', undefined).catch(error => error);
        if (check instanceof NorthstarError && (check.code === 'not_found' || check.code === 'forbidden')) {
          return subscription._failed(check);
        }
      }
      if (status === 0) this._setState('reconnecting', new NorthstarError('connection_failed', 'the server is unreachable'));
      const ceiling = Math.min(this.options.backoffMaxMs, this.options.backoffBaseMs * 2 ** attempt);
      setTimeout(() => {
        if ((status === 0 || limit) && this.state === 'reconnecting') this._setState('open', null);
        this._openSource(subscription, attempt + 1);
      }, Math.random() * ceiling);
    };
  }

  _closeSource(subscription) {
    if (subscription.transportState instanceof EventSource) subscription.transportState.close();
    subscription.transportState = null;
  }

  // ---- streams -------------------------------------------------------------------

  /**
   * Follows a stream from `after` (default 0); see `SubscribeOptions`.
   * @returns {Subscription}
   */
  subscribe(stream, options = {}) {
    if (typeof stream !== 'string' || !/^(chat|canvas|gesture|replay):[A-Za-z0-9_-]+$/.test(stream)) {
      throw new NorthstarError('invalid_stream', `"${stream}" is not a stream (chat:<id>, canvas:<id>, gesture:<id>, replay:<id>)`);
    }
    if (this._find(stream)) throw new NorthstarError('already_subscribed', `${stream} is subscribed already`);
    const subscription = new Subscription(this, stream, options);
    this._subscriptions.add(subscription);
    if (this.state === 'closed') this.connect().catch(() => {});
    else if (this.state === 'open') this._start(subscription);
    return subscription;
  }

  _find(stream) {
    for (const subscription of this._subscriptions) if (subscription.stream === stream) return subscription;
    return null;
  }

  _start(subscription) {
    if (this.transport === 'ws') this._subscribeOnSocket(subscription);
    else this._openSource(subscription);
  }

  _subscribeOnSocket(subscription) {
    if (!this._socketOpen()) return; // the reconnect subscribes it after its last seq
    const [kind, id] = splitStream(subscription.stream);
    const message = kind === 'replay'
      ? { type: 'replay', gesture_id: id, after: subscription.lastSeq, ...replayQuery(subscription) }
      : { type: 'subscribe', stream: subscription.stream, after: subscription.lastSeq };
    this._send(message).catch(error => {
      // A lost or late answer: the next reconnect subscribes it again after its last seq.
      if (['connection_lost', 'closed', 'timeout', 'already_subscribed'].includes(error.code)) return;
      if (error.code === 'token_expired') return void this._reauthenticate();
      subscription._failed(error);
    });
  }

  _unsubscribe(subscription) {
    this._forget(subscription);
    this._closeSource(subscription);
    if (this.transport === 'ws' && this._socketOpen()) {
      this._send({ type: 'unsubscribe', stream: subscription.stream }).catch(() => {});
    }
  }

  _forget(subscription) {
    this._subscriptions.delete(subscription);
  }

  /** The server ended one stream: resume it if it can go on, else tell the app. */
  _streamEnded(subscription, code, lastSeq, message) {
    if (typeof lastSeq === 'number') subscription.lastSeq = Math.max(subscription.lastSeq, lastSeq);
    switch (code) {
      case 'token_expired':
        // A fresh credential, then the stream goes on after its last seq.
        return void this.token({ force: true }).then(() => this._resumeStream(subscription), error => this._retry(error));
      case 'slow_consumer':
      case 'server_closed':
      case 'unavailable':
        // The socket (or the SSE stream) is closing; the reconnect resumes it.
        if (this.transport === 'sse') setTimeout(() => this._resumeStream(subscription), Math.random() * this.options.backoffBaseMs);
        return;
      default:
        subscription._ended(code, lastSeq, message);
    }
  }

  _resumeStream(subscription) {
    if (subscription.closed || this.state !== 'open') return; // the reconnect resumes it
    if (this.transport === 'ws') this._reauthenticate().then(() => this._subscribeOnSocket(subscription));
    else this._openSource(subscription);
  }

  async _reauthenticate() {
    if (!this._socketOpen()) return;
    const token = await this.token();
    await this._send({ type: 'auth', token }).catch(() => this._socket?.close(4000, 'reauthenticate'));
  }

  async _pauseReplay(subscription) {
    const [, gestureId] = splitStream(subscription.stream);
    if (this.transport === 'ws') {
      const answer = await this._send({ type: 'replay.pause', gesture_id: gestureId });
      subscription.lastSeq = Math.max(subscription.lastSeq, answer.last_seq ?? 0);
    } else {
      this._closeSource(subscription);
    }
    return subscription.lastSeq;
  }

  async _resumeReplay(subscription) {
    const [, gestureId] = splitStream(subscription.stream);
    if (this.transport === 'ws') await this._send({ type: 'replay.resume', gesture_id: gestureId });
    else this._openSource(subscription);
  }

  // ---- writes and reads ------------------------------------------------------------

  /**
   * Runs a kernel operation (`chat.post`, `canvas.command`, `gesture.start`,
   * `gesture.append`, `gesture.end`) on whichever transport is up; resolves
   * with `{status, result}` (the REST answer), rejects with a NorthstarError.
   * `retry`: the call is retry-safe, so it is sent again after a reconnect.
   */
  call(operation, ids, body, { retry = false } = {}) {
    const shape = OPERATIONS[operation];
    if (!shape) return Promise.reject(new NorthstarError('invalid_operation', `no operation "${operation}"`));
    if (this.state === 'closed') this.connect().catch(() => {});
    const rest = { path: shape.rest(ids), body };
    if (this.transport === 'sse') {
      return this.rest('POST', rest.path, body, { retry }).then(({ status, body: result }) => ({ status, result }));
    }
    return this._send(shape.ws(ids, body), { retry, rest }).then(answer => answer.status !== undefined
      ? { status: answer.status, result: answer.result } : answer);
  }

  /**
   * A REST request with the current credential; resolves with `{status, body}`.
   * A 401 gets one retry with a fresh credential. With `retry`, a request that
   * got no answer (or a 502/503/504) is sent again, with backoff, until the
   * client is closed: for reads, and for writes that are retry-safe. Any
   * request refused 429 `rate_limited` (nothing of it was stored) waits the
   * server's `retry_after_ms` and goes again; so does one refused because
   * the user (or tenant) has as many requests in progress as the node takes
   * (`too_many_user_requests`, `too_many_tenant_requests`: nothing of it was
   * done), a second later.
   */
  async rest(method, path, body, { retry = false } = {}) {
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      const token = await this.token();
      let response;
      try {
        response = await fetch(this.url + path, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (error) {
        if (!retry || this.state === 'closed') throw new NorthstarError('connection_lost', `no answer from the server: ${error.message}`);
        await sleep(Math.random() * Math.min(this.options.backoffMaxMs, this.options.backoffBaseMs * 2 ** attempt));
        continue;
      }
      if (response.status === 401 && !refreshed) {
        refreshed = true;
        await this.token({ force: true });
        continue;
      }
      if (retry && response.status >= 502 && response.status <= 504 && this.state !== 'closed') {
        await sleep(Math.random() * Math.min(this.options.backoffMaxMs, this.options.backoffBaseMs * 2 ** attempt));
        continue;
      }
      const text = await response.text();
      let json = null;
      try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: kept as null */ }
      // Over the node's rate or its requests in progress: nothing was done, so the request waits and goes again.
      if (response.status === 429 && SEND_AGAIN.has(json?.error?.code) && this.state !== 'closed') {
        await sleep(rateLimitWait(json.error));
        continue;
      }
      if (!response.ok) {
        // The server's id for this request: what its log lines for it carry.
        const requestId = response.headers.get('x-request-id');
        throw json?.error ? NorthstarError.fromServer(json.error, response.status, requestId)
          : new NorthstarError('http_error', `${method} ${path} answered ${response.status}`, { status: response.status, requestId });
      }
      return { status: response.status, body: json };
    }
  }
}

/** The 429 codes of a REST request the server did nothing of: sent again after the wait. */
const SEND_AGAIN = new Set(['rate_limited', 'too_many_user_requests', 'too_many_tenant_requests']);

/**
 * How long to wait before sending a request refused 429 again (`SEND_AGAIN`):
 * the server's `retry_after_ms`, plus up to a tenth more, so clients
 * refused together do not all come back in the same millisecond.
 */
function rateLimitWait(error) {
  const wait = Number.isFinite(error?.retry_after_ms) ? error.retry_after_ms : 1000;
  return wait * (1 + Math.random() / 10);
}

/** The replay options of a `replay:` subscription as query members. */
function replayQuery(subscription) {
  const options = subscription.replay ?? {};
  const query = {};
  if (options.speed !== undefined) query.speed = options.speed;
  if (options.pace !== undefined) query.pace = options.pace;
  // `from_ms` places the start; once samples played, `after` does.
  if (options.from_ms !== undefined && subscription.lastSeq === 0) query.from_ms = options.from_ms;
  return query;
}

function refetchPath(stream) {
  const [kind, id] = splitStream(stream);
  return kind === 'chat' ? `/v1/threads/${id}` : kind === 'canvas' ? `/v1/canvases/${id}` : null;
}

/** A JWT's `exp` in milliseconds, or null for a credential that is not a JWT. */
export function jwtExpiry(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(parts[1].length / 4) * 4, '='));
    const exp = JSON.parse(json).exp;
    return typeof exp === 'number' ? exp * 1000 : null;
  } catch {
    return null;
  }
}

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms));
}
