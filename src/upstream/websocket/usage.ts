import { fromEdges } from '../usage-tap/edges.ts';
import { EDGE_BYTES } from '../usage-tap/held.ts';
import { isObject, modelName, readEvent } from '../usage-tap/read.ts';
import { hasKey, hasObjectKey } from '../usage-tap/sse-tap.ts';
import type { UsageInfo } from '../usage-tap/types.ts';

/**
 * Usage read from the server events of one socket, a response at a time. An event that carries a usage
 * object is one finished response: Realtime's `response.done`, a transcription's `...completed`, Responses
 * WebSocket mode's `response.completed` / `.incomplete` / `.failed`, and the Responses events a Live session
 * wraps in `response.event`. Only text frames that contain a `"usage"` object (or, while the session's model
 * is unknown, a `"model"`) are parsed; the rest (audio deltas above all) are only scanned for the key.
 */

const USAGE_KEY = Buffer.from('"usage"');
const MODEL_KEY = Buffer.from('"model"');
/** Events longer than this are read from their first and last EDGE_BYTES instead of being parsed whole. */
const MAX_PARSED_BYTES = 1024 * 1024;

export interface SocketUsage {
  /** One text frame from OpenAI. */
  read(frame: Buffer): void;
}

/**
 * `onResponse` gets each response's usage (its model: the event's, else the session's, else `queryModel`)
 * and the milliseconds from the first event after the previous response to this one's usage.
 */
export function createSocketUsage(queryModel: string | undefined, onResponse: (usage: UsageInfo, ms: number) => void): SocketUsage {
  let sessionModel: string | undefined;
  let since: number | undefined;
  return {
    read(frame) {
      since ??= performance.now();
      const wantUsage = hasObjectKey(frame, USAGE_KEY);
      const wantModel = sessionModel === undefined && queryModel === undefined && hasKey(frame, MODEL_KEY);
      if (!wantUsage && !wantModel) return;
      const info = readFrame(frame);
      if (info === undefined) return;
      if (info.session !== undefined) sessionModel = info.session;
      const usage = info.usage;
      if (usage.inputTokens === undefined && usage.outputTokens === undefined && usage.totalTokens === undefined) return;
      usage.model ??= sessionModel ?? queryModel;
      delete usage.responseId;
      delete usage.responseStatus;
      onResponse(usage, Math.round(performance.now() - since));
      since = undefined;
    },
  };
}

function readFrame(frame: Buffer): { usage: UsageInfo; session: string | undefined } | undefined {
  if (frame.length > MAX_PARSED_BYTES) {
    // Usage sits at most three objects deep (Live's response.event → event → response → usage).
    const head = frame.subarray(0, EDGE_BYTES).toString('utf8');
    const tail = frame.subarray(frame.length - EDGE_BYTES).toString('utf8');
    return { usage: fromEdges(head, tail, 3) ?? {}, session: undefined };
  }
  let event: unknown;
  try {
    event = JSON.parse(frame.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(event)) return undefined;
  const session = isObject(event.session) ? modelName(event.session.model) : undefined;
  const inner = event.type === 'response.event' && isObject(event.event) ? event.event : event;
  const usage: UsageInfo = {};
  readEvent(inner, usage);
  return { usage, session: session ?? usage.model };
}
