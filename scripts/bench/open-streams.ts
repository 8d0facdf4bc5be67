import http from 'node:http';
import { MiB, round, sampleRss, sleep } from './lib.ts';

/**
 * Memory per open stream: `streams` server-sent event streams held open through a target at once (the
 * mock sends each stream's first event, then holds it), and the target's resident memory with all of
 * them open against its memory at rest. What a long reasoning stream costs while it waits.
 */
export interface OpenStreams {
  streams: number;
  /** Streams whose first event arrived (all of them, or the run says so). */
  opened: number;
  idleMiB: number;
  openMiB: number;
  perStreamKiB: number;
  /** From the first request to the last stream's first event. */
  openAllMs: number;
}

const BODY = JSON.stringify({ model: 'gpt-4.1-mini', input: 'Think for a long time.', stream: true });

export async function measureOpenStreams(url: string, pid: number, streams: number, authorization: string | undefined, timeoutMs = 120_000): Promise<OpenStreams> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const open = (): Promise<http.ClientRequest | undefined> =>
    new Promise((resolve) => {
      const req = http.request(
        `${url}/v1/responses`,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY), accept: 'text/event-stream', ...(authorization ? { authorization } : {}) },
        },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            return resolve(undefined);
          }
          res.once('data', () => resolve(req));
          res.on('end', () => resolve(undefined));
        },
      );
      req.on('error', () => resolve(undefined));
      req.end(BODY);
    });

  // Warm the path (modules, pools), then let the target settle before "at rest" is read.
  const warm = await Promise.all(Array.from({ length: 20 }, open));
  for (const req of warm) req?.destroy();
  await sleep(1500);
  const idle = sampleRss(pid, 20);
  await sleep(500);
  const idleMiB = idle.stop().median / MiB;

  const started = performance.now();
  const held: http.ClientRequest[] = [];
  // In waves, so the target's accept backlog never overflows (a refused connect would not measure memory).
  for (let i = 0; i < streams; i += 200) {
    const wave = await Promise.all(Array.from({ length: Math.min(200, streams - i) }, open));
    for (const req of wave) if (req) held.push(req);
    if (performance.now() - started > timeoutMs) break;
  }
  const openAllMs = performance.now() - started;
  await sleep(1000);
  const sampler = sampleRss(pid, 20);
  await sleep(1000);
  const openMiB = sampler.stop().median / MiB;
  for (const req of held) req.destroy();
  agent.destroy();
  return {
    streams,
    opened: held.length,
    idleMiB: round(idleMiB, 1),
    openMiB: round(openMiB, 1),
    perStreamKiB: round(((openMiB - idleMiB) * 1024) / Math.max(1, held.length), 2),
    openAllMs: round(openAllMs, 0),
  };
}
