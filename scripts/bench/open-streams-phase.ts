import { log } from './lib.ts';
import { measureOpenStreams, type OpenStreams } from './open-streams.ts';
import { opts } from './options.ts';
import type { Processes } from './processes.ts';
import type { Settler } from './quiet.ts';
import { fmt, type Row } from './table.ts';
import { AUTH } from './workload.ts';

export interface StreamsResult {
  relay: OpenStreams;
  raw: OpenStreams;
}

/**
 * Memory per open stream, relay and raw pipe: each against a mock that sends a stream's first event and
 * then holds it, with room for every stream under one key (MAX_IN_FLIGHT_PER_KEY).
 */
export async function openStreamsPhase(procs: Processes, quiet: Settler): Promise<StreamsResult> {
  const hold = await procs.startMock('mock-hold', ['--sse-gap-ms', '600000', '--sse-events', '1']);
  const relay = await procs.startRelay(hold.url, 'warn', 'relay-streams', [], { MAX_IN_FLIGHT_PER_KEY: String(opts.streams + 100) });
  const raw = await procs.startRawPipe(hold.url, 'raw-pipe-streams');
  await quiet.settle('open streams');
  log(`open streams: ${opts.streams} held open at once through the relay, then through the raw pipe`);
  const result = {
    relay: await measureOpenStreams(relay.url, relay.child.pid, opts.streams, AUTH),
    raw: await measureOpenStreams(raw.url, raw.child.pid, opts.streams, AUTH),
  };
  for (const [k, m] of Object.entries(result)) log(`${k}: ${m.opened}/${m.streams} open, ${m.idleMiB} → ${m.openMiB} MiB, ${m.perStreamKiB} KiB per stream, all open in ${m.openAllMs} ms`);
  await Promise.all([relay.child.stop(), raw.child.stop(), hold.child.stop()]);
  return result;
}

export const streamRow = (s: StreamsResult): Row => ({
  metric: `Memory per open SSE stream, ${opts.streams} at once, KiB`,
  relay: fmt(s.relay.perStreamKiB, 1),
  baseline: fmt(s.raw.perStreamKiB, 1),
  compare: `${fmt(s.relay.perStreamKiB - s.raw.perStreamKiB, 1)} KiB more`,
  target: '—',
  pass: s.relay.opened === opts.streams && s.raw.opened === opts.streams ? null : false,
});
