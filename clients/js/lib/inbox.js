/**
 * What arrives from the server, handled in order, at most `budgetMs` of it
 * in any 16 ms (one frame at 60 Hz): a burst (a catch-up of thousands of
 * events) then waits for the next frame instead of freezing the page, and
 * the browser keeps drawing. Sparse messages never reach the budget and are
 * handled at once, in the task they came in.
 */
export class Inbox {
  constructor(budgetMs) {
    this.budgetMs = budgetMs;
    this.tasks = [];
    this.next = 0;
    this.scheduled = false;
    this.windowStart = 0;
    this.spent = 0;
    if (typeof MessageChannel === 'function') {
      // A message to ourselves: the next task, without setTimeout's 4 ms clamp.
      this.channel = new MessageChannel();
      this.channel.port1.onmessage = () => this._drain();
    }
  }

  push(task) {
    this.tasks.push(task);
    if (!this.scheduled) this._drain();
  }

  _drain() {
    this.scheduled = false;
    while (this.next < this.tasks.length) {
      const started = performance.now();
      if (started - this.windowStart >= 16) {
        this.windowStart = started;
        this.spent = 0;
      }
      if (this.spent >= this.budgetMs) return this._afterFrame();
      const task = this.tasks[this.next++];
      try { task(); } catch (error) { queueMicrotask(() => { throw error; }); }
      this.spent += performance.now() - started;
    }
    this.tasks = [];
    this.next = 0;
  }

  /** Goes on once the browser has drawn a frame (or after 50 ms: a hidden page draws none). */
  _afterFrame() {
    this.scheduled = true;
    let resumed = false;
    const resume = () => {
      if (resumed) return;
      resumed = true;
      this.windowStart = performance.now();
      this.spent = 0;
      if (this.channel) this.channel.port2.postMessage(null); else setTimeout(() => this._drain(), 0);
    };
    if (typeof requestAnimationFrame === 'function') requestAnimationFrame(resume);
    setTimeout(resume, 50);
  }
}
