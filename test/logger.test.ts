import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, test } from 'vitest';
import { batchedLines, createLogger } from '../src/core/logger.ts';

async function fileSoonContains(path: string, text: string, withinMs = 2000): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (readFileSync(path, 'utf8').includes(text)) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

/** The request log's writer: pino lines gathered into chunks before sonic-boom writes them. */
describe('batched log lines', () => {
  const sinkFile = () => {
    const path = join(mkdtempSync(join(tmpdir(), 'relay-log-')), 'out.log');
    return { path, sink: pino.destination({ dest: path, sync: false, mkdir: true }) };
  };
  const ready = (sink: ReturnType<typeof pino.destination>) => new Promise<void>((resolve) => sink.once('ready', () => resolve()));

  test('every line arrives once, in order, whole, however the chunks fall', async () => {
    const { path, sink } = sinkFile();
    await ready(sink);
    const out = batchedLines(sink, 1000, 60_000);
    const logger = createLogger('info', out);
    for (let i = 0; i < 2000; i++) logger.info({ reqId: `req_${i}`, op: 'createEmbedding', note: 'é'.repeat(i % 7) }, 'request');
    // The relay's own flush (shutdown): sonic-boom finishes the write in flight before the rest. (Its
    // flushSync, left for the 'exit' hook, writes around a write in flight: lines could land out of order.)
    await new Promise<void>((resolve, reject) => out.flush((err) => (err ? reject(err) : resolve())));
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { reqId: string; note: string });
    expect(lines.map((l) => l.reqId)).toEqual(Array.from({ length: 2000 }, (_, i) => `req_${i}`));
    expect(lines[13]!.note).toBe('é'.repeat(6));
  });

  test('a quiet relay: a lone line is written within the flush period, without more lines after it', async () => {
    const { path, sink } = sinkFile();
    await ready(sink);
    const logger = createLogger('info', batchedLines(sink, 16 * 1024, 20));
    logger.warn({ code: 'x' }, 'just one');
    expect(await fileSoonContains(path, 'just one')).toBe(true);
    expect(JSON.parse(readFileSync(path, 'utf8').trim())).toMatchObject({ level: 40, code: 'x', msg: 'just one' });
  });

  test('logger.flush() hands over what is gathered at once (shutdown)', async () => {
    const { path, sink } = sinkFile();
    await ready(sink);
    const logger = createLogger('info', batchedLines(sink, 16 * 1024, 60_000));
    logger.info('before shutdown');
    await new Promise<void>((resolve, reject) => logger.flush((err) => (err ? reject(err) : resolve())));
    // handed to sonic-boom at once (not after the 60 s period); its write may still be in flight
    expect(await fileSoonContains(path, 'before shutdown')).toBe(true);
  });
});
