import fs = require('fs');
import { parse, str, needId, fdCount, type Globals } from '../args';
import { exec } from '../../runtime/container';
import { loadRecord } from '../../runtime/state';
import { TsrunError } from '../../runtime/errors';
import path = require('path');
import { resolveId, findContainer } from '../../engine/containers';
import { containerEvent } from '../../engine/events';
import { loadEngine } from '../load-engine';
import type { Process } from '../../runtime/spec';

export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, {
    bool: ['tty', 'detach', 'no-new-privs', 'ignore-paused', 'interactive', 'it', 'ti', 'privileged'],
    str: ['process', 'console-socket', 'cwd', 'user', 'pid-file', 'process-label', 'apparmor', 'cgroup', 'preserve-fds', 'pidfd-socket'],
    multi: ['env', 'cap', 'additional-gids'],
    alias: { t: 'tty', d: 'detach', p: 'process', e: 'env', u: 'user', c: 'cap', g: 'additional-gids', w: 'cwd', workdir: 'cwd', i: 'interactive' },
    stopAfter: 1,
  }, 'exec');
  const key = needId(p, 'exec');
  const id = resolveId(g.root, key); // docker's names and id prefixes too
  // docker's exec: stdin only with -i (runc's, for the runtime's own containers: always)
  let engine: ReturnType<typeof findContainer> | undefined; // one of the engine's containers (docker's exec)
  try { engine = findContainer(g.root, key); } catch { /* the runtime's own */ }
  const stdinNull = !p.flags.interactive && !p.flags.it && !p.flags.ti && !!engine;
  if (p.flags.it || p.flags.ti) p.flags.tty = true;
  const rec = loadRecord(g.root, id);
  let proc: Process;
  const file = str(p, 'process');
  if (file) {
    try { proc = JSON.parse(fs.readFileSync(file, 'utf8')); } catch (e) { throw new TsrunError(`exec: process file ${file}: ${(e as Error).message}`); }
    if (!Array.isArray(proc.args) || !proc.args.length) throw new TsrunError(`exec: process file ${file}: args must be a non-empty array`);
    proc.user ??= { uid: 0, gid: 0 };
    proc.cwd ??= '/';
  } else {
    const args = p.args.slice(1);
    if (!args.length) throw new TsrunError('exec: requires a command to run');
    const base = rec.config.process!;
    proc = { ...base, args, terminal: !!p.flags.tty, consoleSize: undefined };
    proc.env = [...(base.env ?? []), ...((p.flags.env as string[]) ?? [])];
    if (str(p, 'cwd')) proc.cwd = str(p, 'cwd')!;
    const user = str(p, 'user');
    if (user) {
      const m = /^(\d+)(?::(\d+))?$/.exec(user);
      if (m) proc.user = { uid: Number(m[1]), gid: m[2] !== undefined ? Number(m[2]) : 0 };
      else {
        // docker's -u NAME[:GROUP]: looked up in the container's /etc/passwd and /etc/group
        const rootfs = path.resolve(rec.bundle, rec.config.root?.path ?? 'rootfs');
        proc.user = loadEngine().resolveUser(rootfs, user);
      }
    }
    const gids = p.flags['additional-gids'] as string[] | undefined;
    if (gids) proc.user = { ...proc.user, additionalGids: gids.map(Number) };
    if (p.flags['no-new-privs']) proc.noNewPrivileges = true;
    const caps = p.flags.cap as string[] | undefined;
    if (caps && proc.capabilities) {
      const add = (l?: string[]) => [...new Set([...(l ?? []), ...caps])];
      proc.capabilities = { ...proc.capabilities, bounding: add(proc.capabilities.bounding), effective: add(proc.capabilities.effective), permitted: add(proc.capabilities.permitted) };
    }
  }
  if (p.flags.tty) proc.terminal = true;
  // docker's exec events, for the engine's containers
  const c = engine;
  const what = (proc.args ?? []).join(' ');
  if (c) { containerEvent(g.root, c, `exec_create: ${what}`); containerEvent(g.root, c, `exec_start: ${what}`); }
  const code = await exec(g.root, id, proc, { detach: !!p.flags.detach, pidFile: str(p, 'pid-file'), consoleSocket: str(p, 'console-socket'), preserveFds: fdCount(str(p, 'preserve-fds')), stdinNull });
  if (c && !p.flags.detach) containerEvent(g.root, c, 'exec_die', { exitCode: String(code) });
  return code;
}
