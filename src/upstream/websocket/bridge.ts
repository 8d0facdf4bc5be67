import WebSocket from 'ws';

/**
 * Two open WebSockets joined: the caller's and OpenAI's. Every message crosses as it came (text stays text,
 * binary stays binary, the bytes untouched), pings and pongs cross end to end, and a close on one side
 * closes the other with the same code and reason. Memory stays bounded: when more than HIGH_WATER bytes
 * sent to one side wait in its socket, the relay stops reading the other side (TCP then slows the sender)
 * until they drain below LOW_WATER. OpenAI's side arrives paused (dial.ts), so that nothing it sent with its
 * handshake is read before the pipes are in place; it is resumed here.
 */

export type Direction = 'to_openai' | 'to_caller';

const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

export interface BridgeHooks {
  /** A message arrived from one side (it then goes to the other, unless that one is closing). */
  message(direction: Direction, data: Buffer, isBinary: boolean): void;
  /** Both sides are closed: the code and reason the caller's side closed with. */
  closed(code: number, reason: string): void;
}

export interface Bridge {
  /** Set on every frame either way (messages, pings, pongs); the idle sweep clears it. */
  active: boolean;
  /** Closes both sides with `code` (e.g. 1001 on shutdown, 1000 when idle). */
  close(code: number, reason: string): void;
}

/** Close codes that may be sent in a close frame (RFC 6455 §7.4; 1005, 1006 and 1015 only describe a closure). */
export const isSendableCloseCode = (code: number): boolean =>
  (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);

export function bridge(caller: WebSocket, upstream: WebSocket, hooks: BridgeHooks): Bridge {
  const state: Bridge = {
    active: true,
    close(code, reason) {
      toOpenAI.resume();
      toCaller.resume();
      for (const side of [caller, upstream]) {
        if (side.readyState === WebSocket.OPEN) side.close(code, reason);
      }
    },
  };
  const toOpenAI = pipe(caller, upstream, 'to_openai', state, hooks);
  const toCaller = pipe(upstream, caller, 'to_caller', state, hooks);

  let callerClose: { code: number; reason: string } | undefined;
  let upstreamClosed = false;
  const done = () => {
    if (callerClose && upstreamClosed) hooks.closed(callerClose.code, callerClose.reason);
  };
  // The side told to close must be read again if it was paused, or its close reply would never arrive.
  caller.once('close', (code: number, reason: Buffer) => {
    callerClose = { code, reason: reason.toString() };
    toCaller.resume();
    pass(upstream, code, reason, 'caller connection lost', 1001);
    done();
  });
  upstream.once('close', (code: number, reason: Buffer) => {
    upstreamClosed = true;
    toOpenAI.resume();
    pass(caller, code, reason, 'OpenAI connection lost', 1011);
    done();
  });
  // ws closes a side that breaks the protocol (a message over the size limit, invalid UTF-8) itself, but
  // stops reading it, so its close event only says 1006: the other side is told the real reason now.
  caller.on('error', (err: NodeJS.ErrnoException) => broke(upstream, err));
  upstream.on('error', (err: NodeJS.ErrnoException) => broke(caller, err));
  upstream.resume();
  return state;
}

/** Messages, pings and pongs from `from` to `to`, pausing `from` while `to` is backed up. */
function pipe(from: WebSocket, to: WebSocket, direction: Direction, state: Bridge, hooks: BridgeHooks) {
  let waiting = 0;
  let paused = false;
  const resume = () => {
    if (!paused) return;
    paused = false;
    from.resume();
  };
  const sent = (bytes: number) => () => {
    waiting -= bytes;
    if (waiting <= LOW_WATER) resume();
  };
  from.on('message', (data: Buffer, isBinary: boolean) => {
    state.active = true;
    // Seen even when the other side is already closing: a response OpenAI finishes then is still spent.
    hooks.message(direction, data, isBinary);
    if (to.readyState !== WebSocket.OPEN) return;
    waiting += data.length;
    to.send(data, { binary: isBinary }, sent(data.length));
    if (!paused && waiting > HIGH_WATER) {
      paused = true;
      from.pause();
    }
  });
  from.on('ping', (data: Buffer) => {
    state.active = true;
    if (to.readyState === WebSocket.OPEN) to.ping(data);
  });
  from.on('pong', (data: Buffer) => {
    state.active = true;
    if (to.readyState === WebSocket.OPEN) to.pong(data);
  });
  return { resume };
}

/**
 * One side closed with `code`: close the other the same way. A closure without a status (1005) passes as
 * one; a connection lost without a close frame (1006) becomes `lostCode` with `lostReason`.
 */
function pass(to: WebSocket, code: number, reason: Buffer, lostReason: string, lostCode: number): void {
  if (to.readyState === WebSocket.CLOSING || to.readyState === WebSocket.CLOSED) return;
  if (isSendableCloseCode(code)) to.close(code, reason);
  else if (code === 1005) to.close();
  else to.close(lostCode, lostReason);
}

/** A side broke the protocol (ws's `WS_ERR_*`): close the other with the code ws closed the broken side with. */
function broke(other: WebSocket, err: NodeJS.ErrnoException): void {
  if (other.readyState !== WebSocket.OPEN || !err.code?.startsWith('WS_ERR_')) return;
  if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || err.code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH') other.close(1009, 'Message too big');
  else if (err.code === 'WS_ERR_INVALID_UTF8') other.close(1007, 'Invalid UTF-8 in a text message');
  else other.close(1002, 'WebSocket protocol error');
}
