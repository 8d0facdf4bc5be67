import http from 'node:http';
import { http as mswHttp, HttpResponse } from 'msw';
import { beforeAll, afterAll, expect, test } from 'vitest';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { RELAY_KEY, startTestRelay, type TestRelay } from './helpers/relay.ts';
const { server, upstream } = useMockOpenAI();
let relay: TestRelay;
beforeAll(async () => { relay = await startTestRelay({ MAX_JSON_BODY_BYTES: '1000' }); });
afterAll(() => relay.shutdown());
test('chunked', async () => {
  server.use(mswHttp.all(`${OPENAI_BASE}/*`, async ({request}) => { try { console.log('len', (await request.arrayBuffer()).byteLength) } catch (e) { console.log('err', String(e)) } return HttpResponse.json({ reached: 'upstream' }) }));
  const { hostname, port } = new URL(relay.url);
  const body = JSON.stringify({ model: 'x', input: 'y'.repeat(5000) });
  const answer = await new Promise<any>((resolve, reject) => {
    const req = http.request({ hostname, port, method: 'POST', path: '/v1/responses', agent: false,
      headers: { authorization: `Bearer ${RELAY_KEY}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', () => {});
    let o = 0; const next = () => { if (o >= body.length) return req.end(); req.write(body.slice(o, o + 400)); o += 400; setTimeout(next, 5); }; next();
  });
  console.log(answer, upstream.map(u => u.method + ' ' + u.url.href));
});
