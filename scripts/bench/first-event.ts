import http from 'node:http';
import { log, median, quantile, round } from './lib.ts';
import { opts } from './options.ts';
import type { Settler } from './quiet.ts';
import { AUTH, SSE_BODY } from './workload.ts';

/** SSE time to first event: direct to the mock, through the raw pipe and through the relay. */

export interface FirstEvent {
  headersMs: number;
  firstEventMs: number;
  totalMs: number;
  events: number;
}

function timeFirstEvent(url: string, agent: http.Agent, auth: boolean): Promise<FirstEvent> {
  return new Promise((resolvePromise, reject) => {
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(SSE_BODY), accept: 'text/event-stream' };
    if (auth) headers.authorization = AUTH;
    const started = performance.now();
    let headersMs = Number.NaN;
    let firstEventMs = Number.NaN;
    const req = http.request(`${url}/v1/responses`, { method: 'POST', agent, headers, timeout: 10_000 }, (res) => {
      headersMs = performance.now() - started;
      if (res.statusCode !== 200 || !String(res.headers['content-type']).startsWith('text/event-stream')) {
        res.resume();
        reject(new Error(`SSE request to ${url} answered ${res.statusCode} ${res.headers['content-type']}`));
        return;
      }
      let events = 0;
      let pending = '';
      res.on('data', (chunk: Buffer) => {
        const text = pending + chunk.toString('utf8');
        if (Number.isNaN(firstEventMs) && text.includes('data:')) firstEventMs = performance.now() - started;
        events += (text.match(/^data:/gm) ?? []).length;
        // keep an unfinished last line for the next chunk, so a `data:` split across chunks counts once
        const lastNewline = text.lastIndexOf('\n');
        pending = text.slice(lastNewline + 1);
        if (pending.startsWith('data:')) events--;
      });
      res.on('end', () =>
        resolvePromise({ headersMs, firstEventMs, totalMs: performance.now() - started, events }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`SSE request to ${url} timed out`)));
    req.on('error', reject);
    req.end(SSE_BODY);
  });
}

export interface SseSummary {
  directMs: number;
  rawMs: number;
  relayMs: number;
  directP10Ms: number;
  rawP10Ms: number;
  relayP10Ms: number;
  directP90Ms: number;
  rawP90Ms: number;
  relayP90Ms: number;
  eventsPerStream: number;
  eventsOk: boolean;
  diffMs: number;
  rawDiffMs: number;
}

export interface SseResult {
  summary: SseSummary;
  direct: FirstEvent[];
  raw: FirstEvent[];
  relay: FirstEvent[];
}

export async function ssePhase(quiet: Settler, mockUrl: string, rawUrl: string, relayUrl: string): Promise<SseResult> {
  await quiet.settle('sse');
  // One keep-alive connection per target, as an SDK client would hold; direct, raw pipe and relay take
  // turns so that drift on the machine hits all three alike.
  log(`SSE: ${opts.sseRequests} sequential requests each, direct, through the raw pipe and through the relay`);
  const sseTargets = [
    { name: 'direct', url: mockUrl, auth: false, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }), events: [] as FirstEvent[] },
    { name: 'raw', url: rawUrl, auth: true, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }), events: [] as FirstEvent[] },
    { name: 'relay', url: relayUrl, auth: true, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }), events: [] as FirstEvent[] },
  ];
  for (let i = 0; i < 3; i++) for (const t of sseTargets) await timeFirstEvent(t.url, t.agent, t.auth);
  for (let i = 0; i < opts.sseRequests; i++) for (const t of sseTargets) t.events.push(await timeFirstEvent(t.url, t.agent, t.auth));
  for (const t of sseTargets) t.agent.destroy();
  const [sseDirect, sseRaw, sseRelay] = sseTargets.map((t) => t.events);
  const firstMs = (events: FirstEvent[]) => events.map((e) => e.firstEventMs);
  const sse = {
    directMs: round(median(firstMs(sseDirect)), 3),
    rawMs: round(median(firstMs(sseRaw)), 3),
    relayMs: round(median(firstMs(sseRelay)), 3),
    directP10Ms: round(quantile(firstMs(sseDirect), 0.1), 3),
    rawP10Ms: round(quantile(firstMs(sseRaw), 0.1), 3),
    relayP10Ms: round(quantile(firstMs(sseRelay), 0.1), 3),
    directP90Ms: round(quantile(firstMs(sseDirect), 0.9), 3),
    rawP90Ms: round(quantile(firstMs(sseRaw), 0.9), 3),
    relayP90Ms: round(quantile(firstMs(sseRelay), 0.9), 3),
    eventsPerStream: median(sseRelay.map((e) => e.events)),
    eventsOk: sseRelay.every((e, i) => e.events === sseDirect[i].events && e.events > 1),
    diffMs: 0,
    rawDiffMs: 0,
  };
  sse.diffMs = round(sse.relayMs - sse.directMs, 3);
  sse.rawDiffMs = round(sse.rawMs - sse.directMs, 3);
  log(`SSE first event: direct ${sse.directMs} ms, raw pipe ${sse.rawMs} ms, relay ${sse.relayMs} ms`);
  return { summary: sse, direct: sseDirect, raw: sseRaw, relay: sseRelay };
}

export const roundEvent = (e: FirstEvent) => ({ headersMs: round(e.headersMs, 3), firstEventMs: round(e.firstEventMs, 3), totalMs: round(e.totalMs, 1), events: e.events });
