// A shared canvas document held locally at a known revision. Commands apply
// at once to the local view and go to the server one at a time against the
// revision they were made on (`base_rev`). When someone else committed first
// (409 `rev_conflict`) the canvas fetches what it missed, rebases the
// command and sends it again under the same `command_id`; a command that
// cannot apply any more is reported, never dropped in silence.

import { NorthstarError } from './errors.js';
import { newId } from './ids.js';
import { applyPatch } from './json-patch.js';

const MAX_REBASES = 32;   // one command rebased this often means a livelock: it fails instead
const RECENT = 256;       // revisions kept for the app's rebase function

export class Canvas {
  /**
   * @param {import('./client.js').Client} client
   * @param {string} canvasId
   * @param {import('../northstar').CanvasOptions} [options]
   */
  constructor(client, canvasId, options = {}) {
    this.client = client;
    this.canvasId = canvasId;
    this.options = options;
    this.rev = null;        // the revision `document` is at: the server's, confirmed
    this.document = null;
    this.view = null;       // `document` with the pending commands applied: what the user sees
    this.pending = [];      // commands not yet committed, in the order made
    this.subscription = null;
    this._recent = [];
    this._sending = false;
    this._catchingUp = null;
    this.ready = this._load();
    this.ready.catch(error => options.onError?.(error));
  }

  /**
   * Makes a change: `ops` (RFC 6902), or an intent `document => ops` that is
   * run again against the new head if someone else commits first. Resolves
   * with `{rev, replayed}` once committed; rejects with a NorthstarError
   * (`command_cannot_apply` after a rebase that cannot apply, or the server's code).
   */
  command(change, { commandId = newId('c') } = {}) {
    const intent = typeof change === 'function' ? change : null;
    return new Promise((resolve, reject) => {
      let ops;
      try {
        ops = intent ? intent(structuredClone(this.view ?? {})) : change;
        if (!Array.isArray(ops)) throw new NorthstarError('invalid_patch', 'a command is an array of JSON Patch operations');
        if (this.view) applyPatch(this.view, ops);
      } catch (error) {
        return reject(error);
      }
      this.pending.push({ commandId, ops, intent, baseRev: null, stale: false, rebases: 0, resolve, reject });
      this._changed();
      this._pump();
    });
  }

  /** The document as it was at revision `rev`: `{rev, document}`. */
  async readRevision(rev) {
    const { body } = await this.client.rest('GET', `/v1/canvases/${this.canvasId}?rev=${encodeURIComponent(rev)}`);
    return { rev: body.rev, document: body.document };
  }

  /** Stops following the canvas; pending commands still go out. */
  close() {
    this.subscription?.unsubscribe();
  }

  // ---- the document ------------------------------------------------------------

  async _load() {
    // `head_seq` is read before the document: following the stream after it,
    // and skipping commits the document holds, misses nothing.
    const { body } = await this.client.rest('GET', `/v1/canvases/${this.canvasId}`, undefined, { retry: true });
    this.document = body.document;
    this.rev = body.rev;
    this.subscription = this.client.subscribe(`canvas:${this.canvasId}`, {
      after: body.head_seq,
      onEvent: event => this._received(event),
      onGap: gap => this._gap(gap),
      onEnd: end => this.options.onEnd?.(end),
      onError: error => this.options.onError?.(error),
    });
    this._changed();
    this._pump();
  }

  _received(event) {
    const data = event.data ?? {};
    if (event.type === 'canvas.committed') {
      this._apply({ rev: data.rev, ops: data.ops, command_id: data.command_id, actor: event.actor });
    } else if (event.type.startsWith('gesture.')) {
      this.options.onInk?.({
        type: event.type.slice('gesture.'.length), gestureId: data.gesture_id, actor: event.actor,
        samples: data.samples ?? [], firstSample: data.first_sample ?? null, event,
      });
    }
  }

  /** Applies one revision if it is the next; fetches what is missing if it is past it. */
  _apply(revision) {
    if (revision.rev <= this.rev) return;              // the document holds it already
    if (revision.rev !== this.rev + 1) return void this._catchUp();
    this.document = applyPatch(this.document, revision.ops);
    this.rev = revision.rev;
    this._recent.push(revision);
    if (this._recent.length > RECENT) this._recent.shift();
    // Someone else's commit: commands not sent yet were made on a view without it.
    if (!this.pending.some(c => c.commandId === revision.command_id)) {
      for (const command of this.pending) command.stale = true;
    }
    this._changed();
  }

  /** Fetches and applies every revision after `rev` up to the head (one fetch at a time). */
  _catchUp() {
    this._catchingUp ??= (async () => {
      try {
        for (;;) {
          const { body } = await this.client.rest('GET', `/v1/canvases/${this.canvasId}/revisions?after=${this.rev}`, undefined,
            { retry: true });
          for (const revision of body.revisions) this._apply(revision);
          if (body.revisions.length === 0 || this.rev >= body.head_rev) return;
        }
      } finally {
        this._catchingUp = null;
      }
    })();
    return this._catchingUp;
  }

  /** The log no longer holds what the stream needed: read the document again. */
  async _gap(gap) {
    this.options.onGap?.(gap);
    const { body } = await this.client.rest('GET', `/v1/canvases/${this.canvasId}`, undefined, { retry: true });
    if (body.rev > this.rev) {
      this.document = body.document;
      this.rev = body.rev;
      for (const command of this.pending) command.stale = true;
      this._changed();
    }
  }

  // ---- commands ------------------------------------------------------------------

  async _pump() {
    if (this._sending || this.rev === null || this.pending.length === 0) return;
    this._sending = true;
    const command = this.pending[0];
    try {
      await this._send(command);
    } finally {
      this._sending = false;
      this._changed();
    }
    this._pump();
  }

  async _send(command) {
    for (;;) {
      if (command.stale && !this._rebase(command)) return;
      command.baseRev = this.rev;
      try {
        const body = { command_id: command.commandId, base_rev: command.baseRev, ops: command.ops };
        const { status, result } = await this.client.call('canvas.command', { canvasId: this.canvasId }, body, { retry: true });
        if (this.rev < result.rev) await this._catchUp();
        this._done(command);
        return command.resolve({ rev: result.rev, replayed: status === 200 });
      } catch (error) {
        if (error.code === 'rev_conflict') {
          await this._catchUp();
          command.stale = true;
          continue;
        }
        this._done(command);
        this.options.onRejected?.({ commandId: command.commandId, ops: command.ops, error });
        return command.reject(error);
      }
    }
  }

  /**
   * Makes a stale command fit the new head: the app's `rebase`, else its
   * intent run again, else the same ops if they still apply. False (and the
   * command rejected) when it cannot apply any more.
   */
  _rebase(command) {
    command.stale = false;
    command.rebases += 1;
    let ops = null;
    try {
      if (command.rebases > MAX_REBASES) throw new Error(`rebased ${MAX_REBASES} times without committing`);
      const missed = this._recent.filter(r => command.baseRev === null || r.rev > command.baseRev);
      if (this.options.rebase) {
        ops = this.options.rebase({ ops: command.ops, intent: command.intent, document: structuredClone(this.document),
          rev: this.rev, missed });
      } else if (command.intent) {
        ops = command.intent(structuredClone(this.document));
      } else {
        ops = command.ops;
      }
      if (!Array.isArray(ops)) throw new Error('the rebase gave no operations');
      applyPatch(this.document, ops);
    } catch (cause) {
      const error = new NorthstarError('command_cannot_apply',
        `command ${command.commandId} no longer applies at rev ${this.rev}: ${cause.message}`, { rev: this.rev });
      this._done(command);
      this.options.onRejected?.({ commandId: command.commandId, ops: command.ops, error });
      command.reject(error);
      return false;
    }
    command.ops = ops;
    return true;
  }

  _done(command) {
    this.pending = this.pending.filter(c => c !== command);
  }

  _changed() {
    if (this.document === null) return;
    let view = this.document;
    for (const command of this.pending) {
      try { view = applyPatch(view, command.ops); } catch { /* shown once rebased */ }
    }
    this.view = view;
    this.options.onChange?.({ rev: this.rev, document: this.document, view, pending: this.pending.length });
  }
}
