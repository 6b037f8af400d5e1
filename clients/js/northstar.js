// Northstar's browser client: a dependency-free ES module (no build step).
//
//   import { connect, Thread, Canvas } from 'https://your-server/client/northstar.js';
//   const client = connect({ url: 'https://your-server', token: async () => fetchTokenFromYourApp() });
//   const thread = new Thread(client, threadId, { onChange: messages => render(messages) });
//   await thread.post('hello');
//
// The guide is clients/js/README.md; the types are in northstar.d.ts.

import { Client } from './lib/client.js';

export { Client } from './lib/client.js';
export { NorthstarError } from './lib/errors.js';
export { Subscription } from './lib/subscription.js';
export { Thread } from './lib/chat.js';
export { Canvas } from './lib/canvas.js';
export { GestureCapture, ReplayPlayer } from './lib/graft.js';
export { applyPatch } from './lib/json-patch.js';

/** Makes a client and starts connecting it (see `Client` for the options). */
export function connect(options) {
  const client = new Client(options);
  client.connect().catch(() => { /* the state listeners hear why */ });
  return client;
}
