import vm from 'node:vm';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { createStreamMemory } from '../src/core/stream-memory.ts';

/** The forwarding core's young-generation collections for streamed bodies (core/stream-memory.ts). */
describe('stream memory', () => {
  test('collects once per `everyBytes` streamed, across calls, and reports each collection', () => {
    let collected = 0;
    let reported = 0;
    const memory = createStreamMemory(1000, { collect: () => collected++, onCollect: () => reported++ });
    for (let i = 0; i < 9; i++) memory.streamed(300); // 2,700 bytes
    expect(collected).toBe(2);
    expect(reported).toBe(2);
    memory.streamed(5000); // one big chunk: one collection; its remainder (700 + 5000) % 1000 carries on
    expect(collected).toBe(3);
    memory.streamed(299);
    expect(collected).toBe(3);
    memory.streamed(1);
    expect(collected).toBe(4);
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
    memory.streamed(1);
    memory.streamed(1);
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
