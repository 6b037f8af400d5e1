// Graft in the browser: GestureCapture turns Pointer Events on an element
// into a gesture's samples (coalesced events, pressure, tilt, several
// pointers), sent in batches by time and size; ReplayPlayer plays a stored
// gesture back at its own pace, with pause, seek and speed.

import { NorthstarError } from './errors.js';

export class GestureCapture {
  /**
   * @param {import('./client.js').Client} client
   * @param {string} canvasId
   * @param {Element} element  coordinates are relative to its top-left corner
   * @param {import('../northstar').CaptureOptions} [options]
   */
  constructor(client, canvasId, element, options = {}) {
    this.client = client;
    this.canvasId = canvasId;
    this.element = element;
    this.options = { batchMs: 50, maxBatchSamples: 200, ...options };
    if (!(this.options.maxBatchSamples >= 1)) throw new NorthstarError('invalid_option', 'maxBatchSamples must be at least 1');
    this._gesture = null;
    this._handlers = {
      pointerdown: event => this._down(event),
      pointermove: event => this._move(event),
      pointerup: event => this._up(event, 'up'),
      pointercancel: event => this._up(event, 'cancel'),
    };
    for (const [type, handler] of Object.entries(this._handlers)) element.addEventListener(type, handler);
  }

  /** Stops listening; a gesture in progress is ended. */
  stop() {
    for (const [type, handler] of Object.entries(this._handlers)) this.element.removeEventListener(type, handler);
    if (this._gesture) this._finish();
  }

  _down(event) {
    if (!this._gesture) this._begin(event.timeStamp);
    const gesture = this._gesture;
    if (gesture.pointers.has(event.pointerId)) return; // a second down for one pointer is not a sample
    try { this.element.setPointerCapture(event.pointerId); } catch { /* synthetic events have no capture */ }
    gesture.pointers.set(event.pointerId, 0);
    this._add(event, 'down');
  }

  _move(event) {
    if (!this._gesture?.pointers.has(event.pointerId)) return; // hovering is not drawing
    const coalesced = event.getCoalescedEvents?.() ?? [];
    for (const each of coalesced.length ? coalesced : [event]) this._add(each, 'move', event.pointerId);
  }

  _up(event, phase) {
    if (!this._gesture?.pointers.has(event.pointerId)) return;
    this._add(event, phase);
    this._gesture.pointers.delete(event.pointerId);
    if (this._gesture.pointers.size === 0) this._finish();
  }

  _begin(timeStamp) {
    const body = this.options.baseRev === undefined ? {} : { base_rev: this.options.baseRev };
    const started = this.client.call('gesture.start', { canvasId: this.canvasId }, body).then(({ result }) => {
      this.options.onGesture?.(result);
      return result.gesture_id;
    });
    this._gesture = { origin: timeStamp, pointers: new Map(), buffer: [], stored: 0, timer: null, failed: false,
      id: started, chain: started.then(() => {}) };
    this._gesture.chain.catch(error => this._fail(this._gesture, error));
  }

  /** One sample; the batch leaves when full, or `batchMs` after its first sample. */
  _add(event, phase, pointer = event.pointerId) {
    const gesture = this._gesture;
    // Per pointer, time never goes back (the server refuses a batch where it does).
    const t = Math.max(gesture.pointers.get(pointer) ?? 0, event.timeStamp - gesture.origin, 0);
    gesture.pointers.set(pointer, t);
    const box = this.element.getBoundingClientRect();
    const sample = { t_ms: Math.round(t * 100) / 100, x: round(event.clientX - box.left), y: round(event.clientY - box.top),
      pointer, phase };
    if (Number.isFinite(event.pressure) && event.pressure >= 0 && event.pressure <= 1) sample.pressure = event.pressure;
    if (Number.isFinite(event.tiltX) && Math.abs(event.tiltX) <= 90) sample.tilt_x = event.tiltX;
    if (Number.isFinite(event.tiltY) && Math.abs(event.tiltY) <= 90) sample.tilt_y = event.tiltY;
    if (phase === 'down' && event.button >= 0 && event.button <= 31) sample.button = event.button;
    gesture.buffer.push(sample);
    if (gesture.buffer.length >= this.options.maxBatchSamples) this._flush(gesture);
    else gesture.timer ??= setTimeout(() => this._flush(gesture), this.options.batchMs);
  }

  _flush(gesture) {
    clearTimeout(gesture.timer);
    gesture.timer = null;
    if (gesture.buffer.length === 0 || gesture.failed) return;
    const samples = gesture.buffer;
    gesture.buffer = [];
    // Batches leave one after another: the server stores them in the order sent.
    gesture.chain = gesture.chain.then(async () => {
      if (gesture.failed) return;
      const gestureId = await gesture.id;
      await this._append(gesture, gestureId, samples);
      gesture.stored += samples.length;
    });
    gesture.chain.catch(error => this._fail(gesture, error));
  }

  // A batch whose answer was lost may have been stored: the gesture's
  // sample count tells, so it is never stored twice nor lost.
  async _append(gesture, gestureId, samples) {
    for (;;) {
      try {
        return await this.client.call('gesture.append', { canvasId: this.canvasId, gestureId }, { samples });
      } catch (error) {
        if (error.code !== 'connection_lost' && error.code !== 'timeout') throw error;
        await this.client.ready();
        const { body } = await this.client.rest('GET', `/v1/canvases/${this.canvasId}/gestures/${gestureId}`);
        if (body.sample_count >= gesture.stored + samples.length) return;
      }
    }
  }

  _finish() {
    const gesture = this._gesture;
    this._gesture = null;
    this._flush(gesture);
    gesture.chain = gesture.chain.then(async () => {
      if (gesture.failed) return;
      const gestureId = await gesture.id;
      try {
        const { result } = await this.client.call('gesture.end', { canvasId: this.canvasId, gestureId }, {});
        this.options.onEnd?.(result);
      } catch (error) {
        if (error.code !== 'gesture_ended') throw error; // ended already: a retried end
      }
    });
    gesture.chain.catch(error => this._fail(gesture, error));
  }

  _fail(gesture, error) {
    if (gesture.failed) return;
    gesture.failed = true;
    this.options.onError?.(error);
  }
}

export class ReplayPlayer {
  /**
   * @param {import('./client.js').Client} client
   * @param {string} gestureId
   * @param {import('../northstar').ReplayOptions} [options]
   */
  constructor(client, gestureId, options = {}) {
    this.client = client;
    this.gestureId = gestureId;
    this.options = options;
    this.speed = checkSpeed(options.speed ?? 1);
    this.position = options.fromMs ?? 0; // t_ms of the last sample played
    this.state = 'idle';                 // idle, playing, paused, ended
    this._subscription = null;
  }

  /** Starts, or resumes after a pause. */
  async play() {
    if (this.state === 'paused' && this._subscription) {
      this._setState('playing');
      return this._subscription.resume();
    }
    this._start({ from_ms: this.state === 'ended' ? 0 : this.position, after: 0 });
  }

  async pause() {
    if (this.state !== 'playing') return;
    this._setState('paused');
    await this._subscription.pause();
  }

  /** Plays on from `ms` into the gesture (paused stays paused there). */
  seek(ms) {
    if (!(ms >= 0)) throw new NorthstarError('invalid_from_ms', 'seek takes a non-negative number of milliseconds');
    this.position = ms;
    const paused = this.state === 'paused';
    this._start({ from_ms: ms, after: 0 });
    if (paused) return this.pause();
  }

  /** Changes the pace from the next sample on. */
  setSpeed(speed) {
    this.speed = checkSpeed(speed);
    if (this.state === 'playing') this._start({ after: this._subscription?.lastSeq ?? 0 });
  }

  close() {
    this._subscription?.unsubscribe();
    this._subscription = null;
    this._setState('idle');
  }

  _start({ from_ms, after }) {
    this._subscription?.unsubscribe();
    const replay = { speed: this.speed };
    if (from_ms !== undefined) replay.from_ms = from_ms;
    this._subscription = this.client.subscribe(`replay:${this.gestureId}`, {
      after, replay,
      onEvent: event => {
        this.position = event.data.t_ms;
        this.options.onSample?.(event.data, event);
      },
      onEnd: end => {
        this._subscription = null;
        this._setState(end.code === 'complete' ? 'ended' : 'idle');
        this.options.onEnd?.(end);
      },
      onError: error => {
        this._subscription = null;
        this._setState('idle');
        this.options.onError?.(error);
      },
    });
    this._setState('playing');
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.options.onStateChange?.(state);
  }
}

function checkSpeed(speed) {
  if (!(speed === 0 || (speed >= 0.1 && speed <= 16))) {
    throw new NorthstarError('invalid_speed', 'speed is from 0.1 to 16, or 0 for everything at once');
  }
  return speed;
}

function round(value) {
  return Math.round(value * 100) / 100;
}
