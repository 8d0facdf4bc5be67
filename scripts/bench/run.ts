import os from 'node:os';
import { ssePhase } from './first-event.ts';
import { log } from './lib.ts';
import { loadAutocannon } from './autocannon.ts';
import { memoryPhase } from './memory.ts';
import { openStreamsPhase, streamRow } from './open-streams-phase.ts';
import { opts } from './options.ts';
import { pinHarness } from './pin.ts';
import { Processes } from './processes.ts';
import { profilePhase } from './profile-phase.ts';
import { quietWaiter } from './quiet.ts';
import { report } from './report.ts';
import { armWatchdog, exitWhenDone, installSafetyNet, makeScratchDir } from './safety.ts';
import { startupPhase } from './startup.ts';
import { table } from './table.ts';
import { throughputPhase } from './throughput.ts';
import { onlyWebSockets, webSocketPhase } from './websocket-phase.ts';

/**
 * `npm run bench`: the relay against a raw node:http pass-through (the practical ceiling for a Node
 * relay) and against a mock OpenAI, all on 127.0.0.1, each in its own process.
 *
 *   node scripts/bench/run.ts [--quick] [--duration S] [--connections N] [--rounds N] [--out FILE]
 *                             [--check] [--profile] [--no-info] [--upload-mb N] [--download-mb N]
 *
 * Prints a markdown table and writes every number as JSON (bench-results/latest.json by default).
 * Exits 0 unless the harness itself failed (2), or, with --check, a target was missed (1).
 *
 * This file runs the phases in order; options.ts reads the flags (USAGE is there), each phase has a
 * module of its own, and report.ts prints the table and writes the JSON.
 */

installSafetyNet();
const budgetS = armWatchdog(opts);
const quiet = quietWaiter(opts.waitQuietS);

async function main(): Promise<number> {
  const procs = new Processes(makeScratchDir());
  if (opts.only === 'open-streams') {
    const streams = await openStreamsPhase(procs, quiet);
    console.log(`\n${table([streamRow(streams)])}\n`);
    return streams.relay.opened === opts.streams ? 0 : 1;
  }
  const autocannon = await loadAutocannon();
  const began = performance.now();
  const loadBefore = os.loadavg();
  log(
    opts.only
      ? `only the ${opts.only} scenario, watchdog ${Math.round(budgetS)} s`
      : `${opts.quick ? 'quick' : 'full'} run: ${opts.rounds} rounds x ${opts.durationS} s, ${opts.connections} connections, upload ${opts.uploadMiB} MiB, download ${opts.downloadMiB} MiB, watchdog ${Math.round(budgetS)} s`,
  );

  pinHarness(opts.pin, log);
  const mock = await procs.startMock();
  log(`mock upstream on ${mock.url}`);
  if (opts.only === 'websocket') return onlyWebSockets(procs, quiet, mock.url);
  if (opts.only !== undefined) throw new Error(`--only takes websocket or open-streams (got "${opts.only}")`);

  // ---- throughput, SSE and WebSocket against the same raw pipe and relays
  const raw = await procs.startRawPipe(mock.url);
  const relayWarn = await procs.startRelay(mock.url, 'warn', 'relay-warn');
  // The second relay: at LOG_LEVEL=info, or another checkout's at warn (--against).
  const relayInfo = opts.against
    ? await procs.startRelay(mock.url, 'warn', 'relay-info', [], {}, opts.against)
    : opts.infoLevel
      ? await procs.startRelay(mock.url, 'info', 'relay-info')
      : undefined;
  const throughput = await throughputPhase(autocannon, quiet, mock, raw, relayWarn, relayInfo);
  const sse = await ssePhase(quiet, mock.url, raw.url, relayWarn.url);
  await quiet.settle('websocket');
  const websocket = await webSocketPhase(mock.url, relayWarn.url);

  // The load-test processes are done: fresh ones for memory, so "idle" is not inflated by earlier load.
  await Promise.all([raw.child.stop(), relayWarn.child.stop(), relayInfo?.child.stop()]);

  const memory = await memoryPhase(procs, quiet, mock.url);
  const streams = await openStreamsPhase(procs, quiet);
  const startup = await startupPhase(procs, quiet, mock.url);
  const profiles = opts.profile ? await profilePhase(procs, autocannon, mock.url) : undefined;

  await mock.child.stop();

  return report({ began, loadBefore, quietWaits: quiet.waits, throughput, sse, websocket, memory, streams, startup, profiles });
}

exitWhenDone(main());
