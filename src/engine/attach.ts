// The client side of the supervisor's attach socket (DIR/attach.sock; protocol in native/supervisor.c):
// live output to our stdout/stderr, our stdin to the container, the window size, docker's detach
// keys (ctrl-p,ctrl-q by default).
import net = require('net');
import path = require('path');
import { TsrunError } from '../runtime/errors';
import * as ct from './containers';

const T_STDIN = 0, T_CLOSE = 1, T_RESIZE = 2;
const T_STDOUT = 1, T_STDERR = 2, T_EXIT = 3;

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

const PROXIED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** Forward our signals to the container's init (docker's --sig-proxy; not with a tty). Returns the undo. */
export function proxySignals(root: string, id: string): () => void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const os = require('os') as typeof import('os');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { kill } = require('../runtime/container') as typeof import('../runtime/container');
  const fwd = (sig: NodeJS.Signals) => { try { kill(root, id, os.constants.signals[sig], false); } catch { /* gone */ } };
  for (const s of PROXIED) process.on(s, fwd);
  return () => { for (const s of PROXIED) process.off(s, fwd); };
}

/** docker's --detach-keys: comma-separated keys, each a letter or ctrl-<a-z @ [ \ ] ^ _>. */
export function parseDetachKeys(spec: string): Buffer {
  const out: number[] = [];
  for (const k of spec.split(',')) {
    const m = /^ctrl-(.)$/i.exec(k);
    if (m) {
      const c = m[1];
      if (/[a-z]/.test(c)) out.push(c.charCodeAt(0) - 96);
      else if ('@[\\]^_'.includes(c)) out.push('@[\\]^_'.indexOf(c) === 0 ? 0 : 27 + '[\\]^_'.indexOf(c));
      else throw new TsrunError(`Unknown character: '${c}'`);
    } else if (k.length === 1) out.push(k.charCodeAt(0));
    else throw new TsrunError(`Unknown character: '${k}'`);
  }
  return Buffer.from(out);
}

/** Connect to a container's attach socket (by a relative path: the dir may exceed sun_path). */
export function connectAttach(root: string, id: string): Promise<AttachConnection> {
  const dir = ct.containerPath(root, id);
  const cwd = process.cwd();
  return new Promise((resolve, reject) => {
    let s: net.Socket;
    try {
      process.chdir(dir);
      s = net.connect('attach.sock'); // libuv calls connect(2) right here, in this directory
    } catch (e) {
      reject(new TsrunError(`attach to ${id.slice(0, 12)}: ${(e as Error).message}`));
      return;
    } finally {
      try { process.chdir(cwd); } catch { /* removed: stay */ }
    }
    s.once('connect', () => resolve(new AttachConnection(s)));
    s.once('error', (e) => reject(new TsrunError(`attach to ${id.slice(0, 12)}: connect ${path.join(dir, 'attach.sock')}: ${e.message}`)));
  });
}

export interface AttachOptions {
  tty: boolean;
  /** forward our stdin */
  stdin: boolean;
  /** on our stdin's end, close the container's (docker's StdinOnce) */
  closeStdin?: boolean;
  /** null: no detach keys */
  detachKeys: Buffer | null;
}

/**
 * The output side of an attach connection, read from the moment it exists (what comes before
 * streamAttach() is kept and written then).
 */
export class AttachConnection {
  exitCode?: number;
  closed = false;
  onClose?: () => void;
  private held: [number, Buffer][] | null = [];
  private buf: Buffer = Buffer.alloc(0);
  constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      while (this.buf.length >= 8) {
        const len = this.buf.readUInt32BE(4);
        if (this.buf.length < 8 + len) break;
        const type = this.buf[0], data = this.buf.subarray(8, 8 + len);
        this.buf = this.buf.subarray(8 + len);
        if (type === T_EXIT && len >= 4) this.exitCode = data.readUInt32BE(0);
        else if (this.held) this.held.push([type, data]);
        else AttachConnection.write(type, data);
      }
    });
    sock.on('error', () => { /* 'close' follows */ });
    sock.on('close', () => { this.closed = true; this.onClose?.(); });
  }
  private static write(type: number, data: Buffer) {
    if (type === T_STDOUT) process.stdout.write(data);
    else if (type === T_STDERR) process.stderr.write(data);
  }
  flush(): void {
    for (const [t, d] of this.held ?? []) AttachConnection.write(t, d);
    this.held = null;
  }
  send(type: number, data: Buffer = Buffer.alloc(0)): void {
    const h = Buffer.alloc(8);
    h[0] = type;
    h.writeUInt32BE(data.length, 4);
    if (!this.sock.destroyed) this.sock.write(Buffer.concat([h, data]));
  }
}

/** Stream until the container exits (its exit code) or the user detaches ('detached'). */
export function streamAttach(conn: AttachConnection, o: AttachOptions): Promise<number | 'detached' | undefined> {
  const stdin = process.stdin, stdout = process.stdout;
  const send = (type: number, data?: Buffer) => conn.send(type, data);
  conn.flush();
  const raw = o.stdin && o.tty && stdin.isTTY;
  const wasRaw = stdin.isTTY ? stdin.isRaw : false;
  if (raw) stdin.setRawMode(true);
  const resize = () => {
    if (!stdout.isTTY) return;
    const b = Buffer.alloc(4);
    b.writeUInt16BE(stdout.rows, 0);
    b.writeUInt16BE(stdout.columns, 2);
    send(T_RESIZE, b);
  };
  if (o.tty) { resize(); stdout.on('resize', resize); }
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: number | 'detached' | undefined) => {
      if (done) return;
      done = true;
      if (o.tty) stdout.off('resize', resize);
      if (o.stdin) { stdin.off('data', onData); stdin.off('end', onEnd); stdin.pause(); }
      if (raw) stdin.setRawMode(wasRaw);
      resolve(r);
    };
    const keys = o.detachKeys;
    let held = 0; // bytes of the detach sequence seen so far (not sent yet)
    const onData = (d: Buffer) => {
      const out: number[] = [];
      for (const b of d) {
        if (keys && keys.length && b === keys[held]) {
          if (++held === keys.length) {
            if (out.length) send(T_STDIN, Buffer.from(out));
            conn.sock.destroy();
            finish('detached');
            return;
          }
          continue;
        }
        if (held) { out.push(...keys!.subarray(0, held)); held = 0; if (b === keys![0]) { held = 1; continue; } }
        out.push(b);
      }
      if (out.length) send(T_STDIN, Buffer.from(out));
    };
    const onEnd = () => { if (o.closeStdin) send(T_CLOSE); };
    if (o.stdin) { stdin.on('data', onData); stdin.on('end', onEnd); stdin.resume(); }
    conn.onClose = () => finish(conn.exitCode);
    if (conn.closed) finish(conn.exitCode);
  });
}

/**
 * A foreground run under the container's supervisor, as with -d, attached before it starts:
 * docker's `run -it` (a terminal on our stdin; ctrl-p ctrl-q or --detach-keys leave it running),
 * and a foreground run with a restart policy (the supervisor restarts it after we returned).
 * Resolves with the first exit code (0 after a detach); with --rm, once the container is removed.
 */
export async function runAttached(root: string, rec: ct.ContainerRecord, o: { restart?: string; rm?: boolean; detachKeys?: string; tty: boolean; stdin: boolean }): Promise<number> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startDetached, readExit, sleep } = require('./lifecycle') as typeof import('./lifecycle');
  const keys = o.stdin ? parseDetachKeys(o.detachKeys ?? DEFAULT_DETACH_KEYS) : null;
  let conn: AttachConnection | undefined;
  await startDetached(root, rec, { restart: o.restart, rm: o.rm, tty: o.tty, stdin: o.stdin, attach: (s) => { conn = new AttachConnection(s); } });
  const undo = o.tty ? () => undefined : proxySignals(root, rec.id);
  const r = await streamAttach(conn!, { tty: o.tty, stdin: o.stdin, closeStdin: true, detachKeys: keys }).finally(undo);
  if (r === 'detached') {
    process.stderr.write('read escape sequence\n');
    return 0;
  }
  const code = r ?? readExit(root, rec.id)?.exitCode ?? 0;
  if (o.rm) {
    // the supervisor removes it after the exit: as docker run --rm, return once it is gone
    const dir = ct.containerPath(root, rec.id);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require('fs') as typeof import('fs');
    for (let i = 0; i < 600 && fs.existsSync(dir); i++) await sleep(50);
  }
  return code;
}
