import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { defaultMaxConnections } from '../src/core/connection-guard.ts';
import { createHostGuard } from '../src/core/host-guard.ts';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../src/core/json-depth.ts';
import { createStreamRedactor } from '../src/upstream/redact.ts';

/** The pieces of issue 16's guards on their own: the stream redactor, the nesting bound, the host check, the default cap. */

const SECRET = 'sk-proj-guard-test-0123456789abcdef';

describe('stream redactor', () => {
  test('whatever the chunking, the output is the input with every key replaced, and nothing else changed', () => {
    const piece = fc.oneof(fc.constant(SECRET), fc.constant(SECRET.slice(0, 7)), fc.constant('s'), fc.string({ maxLength: 30 }), fc.constant('\n\n'));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 8 }), (pieces, cuts) => {
        const input = Buffer.from(pieces.join(''), 'utf8');
        const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
        const redactor = createStreamRedactor(SECRET);
        const out: Buffer[] = [];
        let from = 0;
        for (const at of [...points, input.length]) {
          out.push(redactor.write(input.subarray(from, at)));
          from = at;
        }
        out.push(redactor.end());
        expect(Buffer.concat(out).toString('utf8')).toBe(pieces.join('').split(SECRET).join('[redacted]'));
      }),
      { numRuns: 500 },
    );
  });

  test('an event ending in a blank line goes on whole at once (nothing held back, no delay)', () => {
    const redactor = createStreamRedactor(SECRET);
    const event = Buffer.from('event: x\ndata: {"s":"sk"}\n\n');
    expect(redactor.write(event).equals(event)).toBe(true);
    expect(redactor.end().length).toBe(0);
  });
});

describe('JSON nesting bound', () => {
  test('counts objects and arrays, not brackets inside strings (escaped quotes included)', () => {
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    expect(jsonDepthExceeds(deep(MAX_JSON_DEPTH))).toBe(false);
    expect(jsonDepthExceeds(deep(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(jsonDepthExceeds(JSON.stringify({ s: '['.repeat(1000) }))).toBe(false);
    expect(jsonDepthExceeds(JSON.stringify({ s: `\\"${'{'.repeat(1000)}` }))).toBe(false);
    expect(jsonDepthExceeds(`{"a":"\\\\"}${'['.repeat(MAX_JSON_DEPTH + 1)}`)).toBe(true);
  });

  test('agrees with the depth of what JSON.stringify wrote, for any value', () => {
    const depthOf = (v: unknown): number => (v !== null && typeof v === 'object' ? 1 + Math.max(0, ...Object.values(v).map(depthOf)) : 0);
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 0, max: 8 }), (value, max) => {
        expect(jsonDepthExceeds(JSON.stringify(value), max)).toBe(depthOf(value) > max);
      }),
      { numRuns: 500 },
    );
  });
});

describe('host guard (DNS rebinding)', () => {
  const config = (env: Record<string, string>) => loadConfig({ OPENAI_API_KEY: 'sk-x', RELAY_KEY: 'relay-key-0123456789abc', ...env });

  test('off on a public address with relay keys; on for a loopback address or RELAY_AUTH=off', () => {
    expect(createHostGuard(config({ HOST: '0.0.0.0' }))).toBeUndefined();
    expect(createHostGuard(config({ HOST: '127.0.0.1' }))).toBeDefined();
    expect(createHostGuard(config({ HOST: '::1' }))).toBeDefined();
    expect(createHostGuard(config({ HOST: 'localhost' }))).toBeDefined();
    expect(createHostGuard(config({ HOST: '0.0.0.0', RELAY_AUTH: 'off' }))).toBeDefined();
  });

  test('which Host and Origin values pass', () => {
    const guard = createHostGuard(config({ HOST: '127.0.0.1', PUBLIC_BASE_URL: 'https://relay.example.com', ALLOWED_HOSTS: 'relay.internal' }))!;
    const code = (host: string | undefined, origin?: string) => guard.refuse({ host, origin })?.code ?? 'ok';
    expect(code('127.0.0.1:8000')).toBe('ok');
    expect(code('127.8.9.1')).toBe('ok');
    expect(code('localhost:3000')).toBe('ok');
    expect(code('app.localhost')).toBe('ok');
    expect(code('[::1]:8000')).toBe('ok');
    expect(code('192.168.1.20:8000')).toBe('ok');
    expect(code('[2001:db8::1]')).toBe('ok');
    expect(code('RELAY.EXAMPLE.COM.')).toBe('ok');
    expect(code('relay.internal:8000')).toBe('ok');
    expect(code(undefined)).toBe('ok');
    expect(code('evil.example')).toBe('host_not_allowed');
    expect(code('localhost.evil.example')).toBe('host_not_allowed');
    expect(code('relay.example.com.evil.example')).toBe('host_not_allowed');
    expect(code('127.0.0.1', 'https://chatgpt.com')).toBe('ok');
    expect(code('127.0.0.1', 'https://relay.example.com')).toBe('ok');
    expect(code('127.0.0.1:8000', 'http://localhost:5173')).toBe('ok');
    expect(code('192.168.1.20:8000', 'http://192.168.1.20:8000')).toBe('ok');
    expect(code('127.0.0.1', 'https://evil.example')).toBe('origin_not_allowed');
    expect(code('127.0.0.1', 'null')).toBe('origin_not_allowed');
    expect(code('192.168.1.20:8000', 'http://192.168.1.20:9999')).toBe('origin_not_allowed');
  });
});

describe('default connection cap', () => {
  const limits = (soft: string) => {
    const file = join(mkdtempSync(join(tmpdir(), 'relay-limits-')), 'limits');
    writeFileSync(file, `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                 1048576              files\n`);
    return file;
  };
  test('half of what the open-file limit leaves after the accept backlog and a reserve, at most 10,000', () => {
    expect(defaultMaxConnections(limits('2048'))).toBe(704);
    expect(defaultMaxConnections(limits('20000'))).toBe(9680);
    expect(defaultMaxConnections(limits('1048576'))).toBe(10_000);
    expect(defaultMaxConnections(limits('unlimited'))).toBe(10_000);
    expect(defaultMaxConnections(limits('256'))).toBe(64);
    expect(defaultMaxConnections('/nonexistent/limits')).toBe(1024);
  });
});
