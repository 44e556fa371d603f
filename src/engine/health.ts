// Health checks (docker's HEALTHCHECK, --health-*): the supervisor of a detached container runs
// `tsrun container healthcheck ID` every interval while the container runs; that one probe execs
// the test in the container (killed at the timeout), and records the result in DIR/health.json:
// the status (starting, healthy, unhealthy), the failing streak and the last five probes, as
// inspect's State.Health shows them. A status change is a `health_status: S` event.
import fs = require('fs');
import path = require('path');
import { TsrunError } from '../runtime/errors';
import * as ct from './containers';
import { containerState } from './lifecycle';
import { containerEvent } from './events';

export interface HealthConfig {
  test: string[];            // ["CMD", arg...] or ["CMD-SHELL", command]
  interval: number;          // ms
  timeout: number;
  startPeriod: number;
  retries: number;
}

export interface HealthLog { Start: string; End: string; ExitCode: number; Output: string }
export interface Health { Status: 'starting' | 'healthy' | 'unhealthy'; FailingStreak: number; Log: HealthLog[]; pid?: number }

export const DEFAULTS = { interval: 30_000, timeout: 30_000, startPeriod: 0, retries: 3 };

/** An image's Healthcheck (nanoseconds; 0 = the default) merged with the run flags; undefined: none. */
export function healthConfig(img: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number } | undefined,
  flags: { cmd?: string; interval?: number; timeout?: number; startPeriod?: number; retries?: number; none?: boolean }): HealthConfig | undefined {
  if (flags.none) return undefined;
  const test = flags.cmd !== undefined ? ['CMD-SHELL', flags.cmd] : img?.Test;
  if (!test?.length || test[0] === 'NONE') return undefined;
  if (test[0] !== 'CMD' && test[0] !== 'CMD-SHELL') throw new TsrunError(`unknown healthcheck type ${JSON.stringify(test[0])} (CMD, CMD-SHELL, NONE)`, 125);
  const ms = (ns: number | undefined) => (ns ? Math.round(ns / 1e6) : undefined);
  return {
    test,
    interval: flags.interval ?? ms(img?.Interval) ?? DEFAULTS.interval,
    timeout: flags.timeout ?? ms(img?.Timeout) ?? DEFAULTS.timeout,
    startPeriod: flags.startPeriod ?? ms(img?.StartPeriod) ?? DEFAULTS.startPeriod,
    retries: flags.retries ?? (img?.Retries || DEFAULTS.retries),
  };
}

function healthFile(root: string, id: string): string {
  return path.join(ct.containerPath(root, id), 'health.json');
}

export function readHealth(root: string, id: string): Health | undefined {
  try { return JSON.parse(fs.readFileSync(healthFile(root, id), 'utf8')) as Health; } catch { return undefined; }
}

/** One probe of a running container; the new state is written before it returns. */
export async function probe(root: string, key: string, tsrunBin: string): Promise<void> {
  const c = ct.findContainer(root, key);
  const h = c.health;
  const st = containerState(root, c);
  if (!h || st.status !== 'running') return;
  const before = readHealth(root, c.id);
  const cur: Health = before && before.pid === st.pid ? { ...before } : { Status: 'starting', FailingStreak: 0, Log: [], pid: st.pid };
  const was = cur.Status;
  const start = new Date();
  const { code, output } = await execWithTimeout(root, c.id, h, tsrunBin);
  const end = new Date();
  cur.Log = [...cur.Log, { Start: start.toISOString(), End: end.toISOString(), ExitCode: code, Output: output }].slice(-5);
  const inGrace = st.startedAt !== undefined && start.getTime() - Date.parse(st.startedAt) < h.startPeriod;
  if (code === 0) {
    cur.FailingStreak = 0;
    cur.Status = 'healthy';
  } else if (!(inGrace && cur.Status === 'starting')) {
    cur.FailingStreak++;
    if (cur.FailingStreak >= h.retries) cur.Status = 'unhealthy';
  }
  const file = healthFile(root, c.id);
  fs.writeFileSync(file + '.tmp', JSON.stringify(cur));
  fs.renameSync(file + '.tmp', file);
  if (cur.Status !== was) containerEvent(root, c, `health_status: ${cur.Status}`);
}

/** The probe's process (its pid from `exec --pid-file`), if it is still one of the container's: a pid can be reused. */
function killProbe(pidFile: string, id: string): void {
  try {
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    if (pid > 0 && fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(id)) process.kill(pid, 'SIGKILL');
  } catch { /* not started or gone */ }
}

/** `tsrun exec` of the test; past the timeout the process in the container is killed (exit -1, as docker reports it). */
function execWithTimeout(root: string, id: string, h: HealthConfig, tsrunBin: string): Promise<{ code: number; output: string }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawn } = require('child_process') as typeof import('child_process');
  const pidFile = path.join(ct.containerPath(root, id), 'health.pid');
  fs.rmSync(pidFile, { force: true });
  const args = h.test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', h.test[1] ?? ''] : h.test.slice(1);
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [tsrunBin, '--root', root, 'exec', '--pid-file', pidFile, id, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    const take = (d: Buffer) => { if (out.length < 4096) out += d.toString(); };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killProbe(pidFile, id);
      child.kill('SIGKILL');
    }, h.timeout);
    child.on('close', (code) => {
      clearTimeout(timer);
      // the exec may have started the process (and written its pid) after the timer looked: killed too
      if (timedOut) killProbe(pidFile, id);
      fs.rmSync(pidFile, { force: true });
      if (timedOut) resolve({ code: -1, output: `Health check exceeded timeout (${h.timeout < 1000 ? `${h.timeout}ms` : `${h.timeout / 1000}s`})` });
      else resolve({ code: code ?? -1, output: out.slice(0, 4096) });
    });
  });
}
