import { log, MiB, round, rssBytes, sampleRss, sleep } from './lib.ts';
import { opts } from './options.ts';
import type { Processes } from './processes.ts';
import type { Settler } from './quiet.ts';
import { download, type Transfer, upload } from './transfers.ts';
import { embeddingOnce } from './workload.ts';

/** Memory during big transfers: RSS growth of a fresh relay and a fresh raw pipe while a file goes up and one comes down. */

export interface MemoryRun {
  process: string;
  transfer: Transfer;
  idleMiB: number;
  peakMiB: number;
  growthMiB: number;
  samples: number;
}

export interface Memory {
  uploadRaw: MemoryRun;
  uploadRelay: MemoryRun;
  downloadRelay: MemoryRun;
  downloadRaw: MemoryRun;
}

/** RSS of `pid` at rest (median over ~400 ms), then its peak while `action` runs (sampled every 20 ms). */
async function measureMemory(name: string, pid: number, action: () => Promise<Transfer>): Promise<MemoryRun> {
  await sleep(300);
  const idle = sampleRss(pid, 20);
  await sleep(400);
  const idleStats = idle.stop();
  const busy = sampleRss(pid, 20);
  const transfer = await action();
  const busyStats = busy.stop();
  const idleMiB = idleStats.median / MiB;
  const peakMiB = Math.max(busyStats.peak, rssBytes(pid)) / MiB;
  return { process: name, transfer, idleMiB: round(idleMiB, 1), peakMiB: round(peakMiB, 1), growthMiB: round(peakMiB - idleMiB, 1), samples: busyStats.samples };
}

/** A few small calls so the code paths under test are loaded and compiled before "idle" is read. */
async function warmPaths(url: string): Promise<void> {
  for (let i = 0; i < 20; i++) await embeddingOnce(url);
  await upload(url, 64 * 1024);
  await download(url, 64 * 1024);
}

/** Fresh processes, so "idle" is not inflated by earlier load. */
export async function memoryPhase(procs: Processes, quiet: Settler, mockUrl: string): Promise<Memory> {
  const uploadBytes = Math.round(opts.uploadMiB * MiB);
  const downloadBytes = Math.round(opts.downloadMiB * MiB);
  const memRaw = await procs.startRawPipe(mockUrl, 'raw-pipe-mem');
  const memRelay = await procs.startRelay(mockUrl, 'warn', 'relay-mem');
  await warmPaths(memRaw.url);
  await warmPaths(memRelay.url);
  await quiet.settle('memory');
  log(`memory: ${opts.uploadMiB} MiB multipart upload and ${opts.downloadMiB} MiB download, raw pipe and relay`);
  const memory = {
    uploadRaw: await measureMemory('raw', memRaw.child.pid, () => upload(memRaw.url, uploadBytes)),
    uploadRelay: await measureMemory('relay', memRelay.child.pid, () => upload(memRelay.url, uploadBytes)),
    downloadRelay: await measureMemory('relay', memRelay.child.pid, () => download(memRelay.url, downloadBytes)),
    downloadRaw: await measureMemory('raw', memRaw.child.pid, () => download(memRaw.url, downloadBytes)),
  };
  for (const [k, m] of Object.entries(memory)) {
    log(`${k}: idle ${m.idleMiB} MiB, peak ${m.peakMiB} MiB, +${m.growthMiB} MiB, ${m.transfer.mibPerS} MiB/s, ${m.transfer.ok ? 'bytes ok' : `BYTES WRONG (${m.transfer.status}, ${m.transfer.bytes}/${m.transfer.expectedBytes})`}`);
  }
  await Promise.all([memRaw.child.stop(), memRelay.child.stop()]);
  return memory;
}
