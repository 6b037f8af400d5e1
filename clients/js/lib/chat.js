// A chat thread as an app shows it: the messages the stream delivered, in
// seq order, plus the user's own messages still on their way. A posted
// message keeps one `client_message_id` across retries and reconnects, so
// the server stores it once, and its event replaces the pending entry in
// place: the app never shows it twice.

import { NorthstarError } from './errors.js';
import { newId } from './ids.js';

export class Thread {
  /**
   * @param {import('./client.js').Client} client
   * @param {string} threadId
   * @param {import('../northstar').ThreadOptions} [options]
   */
  constructor(client, threadId, options = {}) {
    this.client = client;
    this.threadId = threadId;
    this.options = options;
    /** @type {import('../northstar').ChatMessage[]} */
    this.messages = [];
    this.subscription = client.subscribe(`chat:${threadId}`, {
      after: options.after ?? 0,
      onEvent: event => this._received(event),
      onGap: gap => options.onGap?.(gap),
      onEnd: end => options.onEnd?.(end),
      onError: error => options.onError?.(error),
    });
  }

  /**
   * Posts a message. Resolves with its entry once the server stored it (or
   * had stored it before); rejects with a NorthstarError when it refused it.
   */
  async post(text, { data, clientMessageId = newId('m') } = {}) {
    const body = { text, client_message_id: clientMessageId };
    if (data !== undefined) body.data = data;
    const entry = { clientMessageId, text, data, actor: null, seq: null, pending: true, error: null, event: null };
    this.messages.push(entry);
    this._changed();
    try {
      const { result } = await this.client.call('chat.post', { threadId: this.threadId }, body, { retry: true });
      if (result?.event && entry.pending) this._confirm(entry, result.event);
      return entry;
    } catch (error) {
      entry.pending = false;
      entry.error = error instanceof NorthstarError ? error : new NorthstarError('post_failed', String(error));
      this._changed();
      throw entry.error;
    }
  }

  /** Stops following the thread. */
  close() {
    this.subscription.unsubscribe();
  }

  _received(event) {
    if (event.type !== 'chat.message') return;
    const clientMessageId = event.data?.client_message_id;
    const own = clientMessageId && this.messages.find(m => m.clientMessageId === clientMessageId);
    if (own) {
      if (own.seq === null) this._confirm(own, event);
      return;
    }
    const entry = { clientMessageId: clientMessageId ?? null, text: event.data?.text, data: event.data?.data,
      actor: event.actor, seq: event.seq, pending: false, error: null, event };
    this.messages.push(entry);
    this._sort();
    this.options.onMessage?.(entry);
    this._changed();
  }

  _confirm(entry, event) {
    entry.pending = false;
    entry.seq = event.seq;
    entry.actor = event.actor ?? entry.actor;
    entry.event = event.id ? event : entry.event; // a pruned replay answers with the identity only
    this._sort();
    this.options.onMessage?.(entry);
    this._changed();
  }

  // Stored messages by seq; those still on their way after them, in the order posted.
  _sort() {
    const stored = this.messages.filter(m => m.seq !== null).sort((a, b) => a.seq - b.seq);
    this.messages = stored.concat(this.messages.filter(m => m.seq === null));
  }

  _changed() {
    this.options.onChange?.(this.messages);
  }
}
