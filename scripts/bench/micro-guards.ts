/**
 * Micro-benchmarks of the per-request and per-chunk work issue 16's guards added to the hot paths:
 *   node scripts/bench/micro-guards.ts
 * Each line: ns per call (median of 7 runs of N calls, after a warm-up), and what the call is.
 */
import { loadConfig } from '../../src/config.ts';
import { createHostGuard } from '../../src/core/host-guard.ts';
import { jsonDepthExceeds } from '../../src/core/json-depth.ts';
import { createStreamRedactor, makeRedactor } from '../../src/upstream/redact.ts';

import { randomBytes } from 'node:crypto';

/** A key shaped like OpenAI's project keys: 164 characters of letters, digits, `-` and `_`. */
const KEY = 'sk-proj-' + randomBytes(117).toString('base64url').slice(0, 156);
const TEXT = 'The quick brown fox jumps over the lazy dog while 42 models stream tokens; ';

function measure(name: string, calls: number, fn: (i: number) => unknown): void {
  let sink = 0;
  for (let i = 0; i < calls; i++) sink += fn(i) ? 1 : 0;
  const runs: number[] = [];
  for (let r = 0; r < 7; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) sink += fn(i) ? 1 : 0;
    runs.push(Number(process.hrtime.bigint() - start) / calls);
  }
  runs.sort((a, b) => a - b);
  console.log(`${runs[3].toFixed(1).padStart(9)} ns  ${name}${sink < 0 ? '' : ''}`);
}

const guard = createHostGuard(loadConfig({ OPENAI_API_KEY: KEY, RELAY_KEY: 'relay-key-0123456789abc', HOST: '127.0.0.1' }))!;
const headers = { host: '127.0.0.1:8000', authorization: 'Bearer relay-key-0123456789abc', 'content-type': 'application/json' };
measure('host guard, per request (loopback relay, a Host seen before, no Origin)', 2_000_000, () => guard.refuse(headers));

const redact = makeRedactor([KEY]);
const requestId = 'req_0123456789abcdef0123456789abcdef';
measure('redacting the upstream x-request-id, per forwarded request', 2_000_000, () => redact(requestId));
const line = JSON.stringify({ level: 30, time: Date.now(), reqId: 'req_relay_0a1b2c3d4e5f000123', key: 'alice', op: 'createEmbedding', status: 200, ms: 12, upstreamMs: 10, upstreamId: requestId, msg: 'request' }) + '\n';
measure(`logger hook, per log line (${line.length} B)`, 2_000_000, () => redact(line));

for (const size of [200, 1024, 16 * 1024]) {
  const event = Buffer.from(`event: response.output_text.delta\ndata: ${JSON.stringify({ type: 'response.output_text.delta', delta: TEXT.repeat(Math.ceil(size / TEXT.length)).slice(0, size - 80) })}\n\n`);
  const redactor = createStreamRedactor(KEY);
  measure(`stream redactor, per SSE chunk of ${event.length} B`, size > 4096 ? 200_000 : 1_000_000, () => redactor.write(event));
}

const chat = JSON.stringify({ model: 'gpt-5', stream: true, messages: Array.from({ length: 8 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: 'Hello there, '.repeat(20) })) });
measure(`nesting check of a ${chat.length} B streamed chat body (only when the relay adds stream_options)`, 200_000, () => jsonDepthExceeds(chat));
