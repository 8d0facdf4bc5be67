import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { createUsageWithholder } from '../src/upstream/stream-usage/answer.ts';
import { askUsageInHeldBody, createUsageSplice } from '../src/upstream/stream-usage/request.ts';

/** Asking a stream for its usage on the caller's behalf, and withholding what the caller did not ask for. */

/** Feeds `text` to the splice cut at `cuts`, returns what went upstream and how it ended. */
function splice(text: string, cuts: number[] = []) {
  const s = createUsageSplice();
  const bytes = Buffer.from(text);
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const at of [...points, bytes.length]) {
    out.push(s.write(bytes.subarray(from, at)));
    from = at;
  }
  const end = s.end();
  return { sent: Buffer.concat([...out, end.tail]).toString(), ...end };
}

describe('a held body', () => {
  test('stream true without usage: include_usage set, the caller\'s other options kept', () => {
    const asked = askUsageInHeldBody(Buffer.from('{"stream":true,"stream_options":{"include_obfuscation":false},"a":1}'));
    expect(asked.injected).toBe(true);
    expect(JSON.parse(asked.body.toString())).toEqual({ stream: true, stream_options: { include_obfuscation: false, include_usage: true }, a: 1 });
  });
  test.each([
    ['not streamed', '{"stream":false}'],
    ['already asked', '{"stream":true,"stream_options":{"include_usage":true}}'],
    ['not JSON', '{"stream":true'],
    ['not an object', '[1]'],
  ])('%s: unchanged', (_name, body) => {
    const asked = askUsageInHeldBody(Buffer.from(body));
    expect(asked).toEqual({ body: Buffer.from(body), injected: false });
  });
});

describe('a streamed body', () => {
  test('stream true, no stream_options: the member goes in before the closing brace, wherever the chunks are cut', () => {
    const body = { messages: [{ role: 'user', content: 'a "stream": false } { "stream_options": 1 \\' }], stream: true, n: [1, { stream: false }] };
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 6 }), fc.constantFrom('', ' ', '\n'), (cuts, space) => {
        const ended = splice(`${JSON.stringify(body, null, space ? 1 : 0)}${space}`, cuts);
        expect(ended.injected).toBe(true);
        expect(JSON.parse(ended.sent)).toEqual({ ...body, stream_options: { include_usage: true } });
      }),
    );
  });
  test.each([
    ['stream false', '{"stream":false,"x":"y"}', false, false],
    ['stream as a string', '{"stream":"true"}', false, false],
    ['stream nested only', '{"a":{"stream":true}}', false, false],
    ['own stream_options asking', '{"stream_options":{"include_usage":true,"include_obfuscation":false},"stream":true}', false, false],
    ['own stream_options not asking', '{"stream":true,"stream_options":{"include_obfuscation":false}}', false, true],
    ['own stream_options null', '{"stream":true,"stream_options":null}', false, true],
    ['an array, not an object', '[{"stream":true}]', false, false],
    ['cut short', '{"stream":true,"a":', false, false],
  ])('%s: sent as it came (injected %s, refused %s)', (_name, body, injected, refused) => {
    const ended = splice(body, [3, 9]);
    expect(ended.sent).toBe(body);
    expect(ended.injected).toBe(injected);
    expect(ended.refused).toBe(refused);
  });
  test('an empty object that says nothing is left alone; stream true as the only member gets a comma', () => {
    expect(splice('{}').sent).toBe('{}');
    expect(splice('{"stream":true}').sent).toBe('{"stream":true,"stream_options":{"include_usage":true}}');
  });
});

describe('withholding what the caller did not ask for', () => {
  const line = (o: object) => `data: ${JSON.stringify(o)}\n\n`;
  const asked = [
    line({ id: 'c', choices: [{ delta: { content: 'x "usage":null' } }], usage: null }),
    line({ usage: null, id: 'c', choices: [] }),
    line({ id: 'c', choices: [], usage: { total_tokens: 3 } }),
    'data: [DONE]\n\n',
  ].join('');
  const unasked = [line({ id: 'c', choices: [{ delta: { content: 'x "usage":null' } }] }), line({ id: 'c', choices: [] }), 'data: [DONE]\n\n'].join('');

  test('usage:null members and the usage chunk go, byte for byte what OpenAI sends unasked, however the stream is cut', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: asked.length }), { maxLength: 8 }), (cuts) => {
        const w = createUsageWithholder();
        const bytes = Buffer.from(asked);
        const out: Buffer[] = [];
        let from = 0;
        for (const at of [...new Set(cuts)].sort((a, b) => a - b)) {
          out.push(w.write(bytes.subarray(from, at)));
          from = at;
        }
        out.push(w.write(bytes.subarray(from)), w.end());
        expect(Buffer.concat(out).toString()).toBe(unasked);
      }),
    );
  });
  test('CRLF lines, and a last line without a newline', () => {
    const w = createUsageWithholder();
    const out = Buffer.concat([w.write(Buffer.from('data: {"a":1,"usage":null}\r\n\r\ndata: [DONE]')), w.end()]).toString();
    expect(out).toBe('data: {"a":1}\r\n\r\ndata: [DONE]');
  });
});
