import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * `Expect: 100-continue`: the caller waits for `100 Continue` before sending its body. Node would send it
 * before any handler ran, inviting the body of a request the relay then refuses (413 by Content-Length, 401,
 * 429), so server.ts takes the request over (`checkContinue`) and marks it; whoever starts reading the body
 * invites it first. A request answered without reading its body gets its final status and no 100.
 */
// A set beside the requests, not a property on them: node's own code then keeps seeing one shape of IncomingMessage.
const pending = new WeakSet<IncomingMessage>();

export function markContinuePending(incoming: IncomingMessage): void {
  pending.add(incoming);
}

/** Sends `100 Continue` if the caller waits for it (once); call right before reading the body. */
export function inviteBody(incoming: IncomingMessage, outgoing: ServerResponse): void {
  if (!pending.delete(incoming)) return;
  if (!outgoing.headersSent) outgoing.writeContinue();
}
