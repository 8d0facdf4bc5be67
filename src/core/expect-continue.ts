import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * `Expect: 100-continue`: the caller waits for `100 Continue` before sending its body. Node would send it
 * before any handler ran, inviting the body of a request the relay then refuses (413 by Content-Length, 401,
 * 429), so server.ts takes the request over (`checkContinue`) and marks it; whoever starts reading the body
 * invites it first. A request answered without reading its body gets its final status and no 100.
 */
const PENDING = Symbol('relayContinuePending');
type Marked = IncomingMessage & { [PENDING]?: boolean };

export function markContinuePending(incoming: IncomingMessage): void {
  (incoming as Marked)[PENDING] = true;
}

/** Sends `100 Continue` if the caller waits for it (once); call right before reading the body. */
export function inviteBody(incoming: IncomingMessage, outgoing: ServerResponse): void {
  const marked = incoming as Marked;
  if (marked[PENDING] !== true) return;
  marked[PENDING] = false;
  if (!outgoing.headersSent) outgoing.writeContinue();
}
