import WebSocket from 'ws';
import { median, quantile, round } from './lib.ts';

/**
 * The WebSocket scenario: round trips over one open socket per target (as an SDK holds one session), the
 * mock upstream echoing every message. Targets take turns, one round trip each, so drift on the machine
 * hits them alike: `direct` to the mock, and the same path through the relay. Two kinds of message: a
 * ~1 KB JSON event (text) and a 16 KiB audio frame (binary, a third of a second of 24 kHz PCM16).
 */

export interface WebSocketTarget {
  name: string;
  /** ws://host:port/v1/realtime?model=... */
  url: string;
  headers?: Record<string, string>;
}

export interface RoundTrips {
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
}

export interface WebSocketResult {
  roundTrips: number;
  /** Per target name: text event and binary frame round trips. */
  targets: Record<string, { text: RoundTrips; binary: RoundTrips; intact: boolean }>;
}

const EVENT = Buffer.from(JSON.stringify({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hello '.repeat(160) }] } }));
const AUDIO = Buffer.alloc(16 * 1024, 0x2a);

function open(target: WebSocketTarget): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(target.url, ['realtime'], { headers: target.headers, perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`${target.name}: upgrade answered ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** Sends `payload` and resolves with the milliseconds until it comes back (and whether it came back unchanged). */
function roundTrip(ws: WebSocket, payload: Buffer, binary: boolean): Promise<{ ms: number; intact: boolean }> {
  return new Promise((resolve) => {
    const started = performance.now();
    ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ ms: performance.now() - started, intact: isBinary === binary && data.equals(payload) }));
    ws.send(payload, { binary });
  });
}

const summary = (ms: number[]): RoundTrips => ({ medianMs: round(median(ms), 3), p10Ms: round(quantile(ms, 0.1), 3), p90Ms: round(quantile(ms, 0.9), 3) });

export async function measureWebSocketRoundTrips(targets: WebSocketTarget[], roundTrips: number): Promise<WebSocketResult> {
  const sockets = await Promise.all(targets.map(open));
  const times = targets.map(() => ({ text: [] as number[], binary: [] as number[], intact: true }));
  for (let i = -Math.min(50, roundTrips); i < roundTrips; i++) {
    for (let t = 0; t < targets.length; t++) {
      const text = await roundTrip(sockets[t]!, EVENT, false);
      const binary = await roundTrip(sockets[t]!, AUDIO, true);
      const record = times[t]!;
      record.intact &&= text.intact && binary.intact;
      if (i < 0) continue; // warm-up
      record.text.push(text.ms);
      record.binary.push(binary.ms);
    }
  }
  await Promise.all(sockets.map((ws) => new Promise((resolve) => (ws.once('close', resolve), ws.close(1000)))));
  return {
    roundTrips,
    targets: Object.fromEntries(targets.map((t, i) => [t.name, { text: summary(times[i]!.text), binary: summary(times[i]!.binary), intact: times[i]!.intact }])),
  };
}

/** The scenario's rows for the bench table: relay vs direct, text and binary (context, no target). */
export function webSocketRows(result: WebSocketResult): { metric: string; relay: string; baseline: string; compare: string; target: string; pass: boolean | null }[] {
  const relay = result.targets.relay!;
  const direct = result.targets.direct!;
  const row = (what: string, r: RoundTrips, d: RoundTrips) => ({
    metric: `WebSocket round trip, ${what}, median of ${result.roundTrips} (p10–p90), ms`,
    relay: `${r.medianMs.toFixed(3)} (${r.p10Ms.toFixed(3)}–${r.p90Ms.toFixed(3)})`,
    baseline: `${d.medianMs.toFixed(3)} (direct)`,
    compare: `+${(r.medianMs - d.medianMs).toFixed(3)} ms`,
    target: '—',
    pass: relay.intact && direct.intact ? null : false,
  });
  return [row('1 KB JSON event', relay.text, direct.text), row('16 KiB binary audio frame', relay.binary, direct.binary)];
}
