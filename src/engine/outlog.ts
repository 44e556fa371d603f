// A foreground container's output (docker run without -d): its stdout and stderr come to us through
// two pipes; each chunk goes on to our own stdout/stderr and, as docker's json-file lines, into the
// container's log, the file the supervisor writes for a detached one (same format, same rotation,
// see native/supervisor.c). So `logs NAME` shows what a foreground run printed, as with docker.
import fs = require('fs');
import net = require('net');
import { TsrunError } from '../runtime/errors';
import type { ContainerRecord } from './containers';

const LINE_MAX = 16384; // a longer line is split, as docker and the supervisor do

/** docker's json-file writer: one {"log","stream","time"} object per line, rotated past maxSize. */
export class JsonLog {
  private fd: number;
  private size: number;
  // an unfinished line per stream (stdout, stderr), as the bytes that came so far
  private part: [Buffer[], Buffer[]] = [[], []];
  private partLen = [0, 0];
  // lines encoded but not written yet: one write per chunk that came in, not one per line
  private out: string[] = [];

  constructor(private readonly file: string, private readonly maxSize = 0, private readonly maxFile = 1) {
    this.fd = fs.openSync(file, 'a', 0o640);
    this.size = fs.fstatSync(this.fd).size;
  }

  take(stream: 0 | 1, d: Buffer): void {
    const time = `${new Date().toISOString().slice(0, 23)}000000Z`;
    let from = 0;
    while (from < d.length) {
      const nl = d.indexOf(10, from);
      const room = LINE_MAX - this.partLen[stream];
      let end = nl < 0 ? d.length : nl + 1;
      if (end - from > room) end = from + room; // the line reached LINE_MAX bytes: written as it is
      else if (nl < 0) { this.hold(stream, d.subarray(from)); break; }
      const text = this.partLen[stream] ? this.unhold(stream, d.subarray(from, end)) : d.toString('utf8', from, end);
      this.line(stream, text, time);
      from = end;
    }
    this.write();
  }

  /** What is left of unfinished lines (the stream ended). */
  flush(): void {
    const time = `${new Date().toISOString().slice(0, 23)}000000Z`;
    for (const s of [0, 1] as const) if (this.partLen[s]) this.line(s, this.unhold(s, Buffer.alloc(0)), time);
    this.write();
  }

  close(): void {
    this.flush();
    fs.closeSync(this.fd);
  }

  private hold(stream: 0 | 1, b: Buffer): void {
    this.part[stream].push(Buffer.from(b));
    this.partLen[stream] += b.length;
  }

  private unhold(stream: 0 | 1, last: Buffer): string {
    const text = Buffer.concat([...this.part[stream], last]).toString('utf8');
    this.part[stream] = [];
    this.partLen[stream] = 0;
    return text;
  }

  private line(stream: 0 | 1, text: string, time: string): void {
    const json = `{"log":${JSON.stringify(text)},"stream":"${stream ? 'stderr' : 'stdout'}","time":"${time}"}\n`;
    this.out.push(json);
    this.size += Buffer.byteLength(json);
    if (this.maxSize > 0 && this.size >= this.maxSize) { this.write(); this.rotate(); }
  }

  private write(): void {
    if (!this.out.length) return;
    fs.writeSync(this.fd, this.out.join(''));
    this.out = [];
  }

  private rotate(): void {
    for (let k = this.maxFile - 1; k >= 1; k--) {
      try { fs.renameSync(k === 1 ? this.file : `${this.file}.${k - 1}`, `${this.file}.${k}`); } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, this.maxFile === 1 ? 'w' : 'a', 0o640);
    this.size = 0;
  }
}

export interface OutputTee {
  /** the write ends, for the container's stdout and stderr */
  fds: [number, number];
  /** after the container exited: our write ends closed, what is still in the pipes read (at most `ms`), the log closed */
  finish(ms?: number): Promise<void>;
}

/** Pipes for a foreground container's stdout and stderr, copied to ours and to its json-file log. */
export function teeOutput(logFile: string, log: ContainerRecord['log']): OutputTee {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { native, strerror } = require('../kernel/native') as typeof import('../kernel/native');
  const sh = native();
  const ends: number[] = [];
  for (let i = 0; i < 2; i++) {
    const p = new Int32Array(2);
    const r = sh.pipe(p);
    if (r < 0) {
      for (const fd of ends) sh.close(fd);
      throw new TsrunError(`pipe for the container's ${i ? 'stderr' : 'stdout'}: ${strerror(-r)}`, 125);
    }
    ends.push(p[0], p[1]);
  }
  let jl: JsonLog;
  try {
    jl = new JsonLog(logFile, log?.maxSize ?? 0, log?.maxFile ?? 1);
  } catch (e) {
    for (const fd of ends) sh.close(fd);
    throw new TsrunError(`open the container's log ${logFile}: ${(e as Error).message}`, 125);
  }
  const outs = [process.stdout, process.stderr];
  const readers = [0, 1].map((s) => {
    const sock = new net.Socket({ fd: ends[s * 2], readable: true, writable: false });
    const ended = new Promise<void>((res) => { sock.on('end', res); sock.on('close', res); sock.on('error', () => res()); });
    sock.on('data', (d: Buffer) => {
      outs[s].write(d);
      jl.take(s as 0 | 1, d);
    });
    return { sock, ended };
  });
  return {
    fds: [ends[1], ends[3]],
    async finish(ms = 2000) {
      sh.close(ends[1]);
      sh.close(ends[3]);
      // a process outside the container's pid namespace (--pid host) may still hold a write end
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(readers.map((r) => r.ended)), new Promise<void>((res) => { timer = setTimeout(res, ms); })]);
      clearTimeout(timer);
      for (const r of readers) r.sock.destroy();
      jl.close();
    },
  };
}
