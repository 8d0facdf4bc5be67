import vm from 'node:vm';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { createStreamMemory } from '../src/upstream/stream-memory.ts';

/** The forwarding core's young-generation collections for streamed bodies (core/stream-memory.ts). */
describe('stream memory', () => {
  const KB = 1024;

  test('collects once per `everyBytes` of bulk chunks streamed, across calls, and reports each collection', () => {
    let collected = 0;
    let reported = 0;
    const memory = createStreamMemory(100 * KB, { collect: () => collected++, onCollect: () => reported++ });
    for (let i = 0; i < 9; i++) memory.streamed(30 * KB); // 270 KB
    expect(collected).toBe(2);
    expect(reported).toBe(2);
    memory.streamed(500 * KB); // one big chunk: one collection; its remainder (70 + 500) % 100 carries on
    expect(collected).toBe(3);
    memory.streamed(29 * KB);
    expect(collected).toBe(3);
    memory.streamed(16 * KB);
    expect(collected).toBe(4);
  });

  test('small chunks (API answers, SSE events) never count', () => {
    let collected = 0;
    const memory = createStreamMemory(100 * KB, { collect: () => collected++ });
    for (let i = 0; i < 10_000; i++) memory.streamed(16 * KB - 1);
    expect(collected).toBe(0);
  });

  test('0 bytes means never', () => {
    let collected = 0;
    const memory = createStreamMemory(0, { collect: () => collected++ });
    memory.streamed(1e12);
    expect(collected).toBe(0);
  });

  test("V8's minor collection runs without exposing gc to any context", () => {
    let reported = 0;
    const memory = createStreamMemory(1, { onCollect: () => reported++ });
    memory.streamed(64 * 1024);
    memory.streamed(64 * 1024);
    expect(reported).toBe(2);
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    expect(vm.runInNewContext('typeof gc')).toBe('undefined');
  });

  test('STREAM_GC_MIB: 8 by default, 0 turns it off, anything else is refused with a sentence', () => {
    const base = { OPENAI_API_KEY: 'sk-test-0123456789abcdef', RELAY_KEY: 'relay-key-0123456789abcdef' };
    expect(loadConfig(base).streamGcBytes).toBe(8 * 1024 * 1024);
    expect(loadConfig({ ...base, STREAM_GC_MIB: '0' }).streamGcBytes).toBe(0);
    expect(loadConfig({ ...base, STREAM_GC_MIB: '32' }).streamGcBytes).toBe(32 * 1024 * 1024);
    for (const bad of ['-1', '1.5', 'lots', '2048']) {
      expect(() => loadConfig({ ...base, STREAM_GC_MIB: bad })).toThrow(/STREAM_GC_MIB must be a whole number from 0 \(off\) to 1024/);
    }
  });
});
