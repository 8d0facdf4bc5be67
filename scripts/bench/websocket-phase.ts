import os from 'node:os';
import { log } from './lib.ts';
import { opts } from './options.ts';
import type { Processes } from './processes.ts';
import type { Settler } from './quiet.ts';
import { gitCommit, writeResults } from './results-file.ts';
import { table } from './table.ts';
import { measureWebSocketRoundTrips, webSocketRows, type WebSocketResult } from './websocket.ts';
import { AUTH } from './workload.ts';

/** WebSocket round trips: direct to the mock and through the relay, on one socket each, taking turns. */
export async function webSocketPhase(mockUrl: string, relayUrl: string): Promise<WebSocketResult> {
  const path = '/v1/realtime?model=gpt-realtime';
  log(`WebSocket: ${opts.wsRoundTrips} round trips each (a 1 KB event, a 16 KiB audio frame), direct and through the relay`);
  const result = await measureWebSocketRoundTrips(
    [
      { name: 'direct', url: `${mockUrl.replace(/^http/, 'ws')}${path}` },
      { name: 'relay', url: `${relayUrl.replace(/^http/, 'ws')}${path}`, headers: { authorization: AUTH } },
    ],
    opts.wsRoundTrips,
  );
  const { direct, relay } = result.targets;
  log(`WebSocket round trip (event / audio): direct ${direct!.text.medianMs} / ${direct!.binary.medianMs} ms, relay ${relay!.text.medianMs} / ${relay!.binary.medianMs} ms`);
  return result;
}

/** `--only websocket`: the mock, one relay, the WebSocket scenario, its rows. */
export async function onlyWebSockets(procs: Processes, quiet: Settler, mockUrl: string): Promise<number> {
  const relay = await procs.startRelay(mockUrl, 'warn', 'relay-ws');
  await quiet.settle('websocket');
  const websocket = await webSocketPhase(mockUrl, relay.url);
  const rows = webSocketRows(websocket);
  console.log(`\n## Relay benchmark: WebSocket scenario only (${os.cpus().length} CPUs, node ${process.version})\n\n${table(rows)}\n`);
  writeResults(opts.out, { meta: { date: new Date().toISOString(), commit: gitCommit(), node: process.version, options: opts }, websocket, rows });
  return opts.check && rows.some((r) => r.pass === false) ? 1 : 0;
}
