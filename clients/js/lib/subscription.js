// One stream a client follows. It remembers the last seq it delivered, so
// whatever the transport does (a resume seam, a reconnect, a fallback from
// WebSocket to SSE) each event reaches the app once, in seq order; what the
// log no longer holds reaches the app as a gap, never as a silent skip.

export class Subscription {
  /**
   * @param {import('./client.js').Client} client
   * @param {string} stream  `chat:<thread_id>`, `canvas:<canvas_id>`, `gesture:<gesture_id>` or `replay:<gesture_id>`
   * @param {object} options  see `SubscribeOptions` in northstar.d.ts
   */
  constructor(client, stream, options = {}) {
    this.client = client;
    this.stream = stream;
    this.lastSeq = options.after ?? 0;
    this.replay = options.replay ?? null; // {speed, from_ms, pace} for `replay:` streams
    this.handlers = options;
    this.closed = false;
    this.paused = false;
    this.transportState = null; // what the transport keeps per subscription (an EventSource, say)
  }

  /** Stops the stream; no callback runs after this returns. */
  unsubscribe() {
    if (this.closed) return;
    this.closed = true;
    this.client._unsubscribe(this);
  }

  /** A replay only: stop where it is (`resume` goes on from the next sample). */
  pause() {
    if (this.closed || this.paused) return Promise.resolve(this.lastSeq);
    this.paused = true;
    return this.client._pauseReplay(this);
  }

  /** A replay only: go on after `lastSeq` at the same speed. */
  resume() {
    if (this.closed || !this.paused) return Promise.resolve();
    this.paused = false;
    return this.client._resumeReplay(this);
  }

  // ---- called by the client's transports ----------------------------------

  _event(event) {
    if (this.closed || typeof event?.seq !== 'number' || event.seq <= this.lastSeq) return; // seen already
    if (event.seq > this.lastSeq + 1 && !this.stream.startsWith('replay:')) {
      // The server promises no gaps; if one ever shows, the app hears of it.
      this._gap(this.lastSeq, event.seq);
    }
    this.lastSeq = event.seq;
    this._call('onEvent', event);
  }

  _gap(requestedAfter, firstSeq) {
    if (this.closed) return;
    this.lastSeq = Math.max(this.lastSeq, firstSeq - 1);
    const [kind, id] = splitStream(this.stream);
    this._call('onGap', {
      stream: this.stream, requestedAfter, firstSeq,
      // What to read again before going on: the resource's current state.
      refetch: kind === 'chat' ? `/v1/threads/${id}` : kind === 'canvas' ? `/v1/canvases/${id}` : null,
    });
  }

  _ended(code, lastSeq, message) {
    if (this.closed) return;
    this.closed = true;
    this.client._forget(this);
    this._call('onEnd', { code, lastSeq, message });
  }

  _failed(error) {
    if (this.closed) return;
    this.closed = true;
    this.client._forget(this);
    this._call('onError', error);
  }

  _call(name, value) {
    const handler = this.handlers[name];
    if (!handler) return;
    try {
      handler(value, this);
    } catch (error) {
      // An app's callback that throws must not break delivery to the others.
      queueMicrotask(() => { throw error; });
    }
  }
}

/** `canvas:cv_x` → ['canvas', 'cv_x']. */
export function splitStream(stream) {
  const colon = stream.indexOf(':');
  return [stream.slice(0, colon), stream.slice(colon + 1)];
}
