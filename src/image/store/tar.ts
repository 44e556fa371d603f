// A streaming tar reader and a tar entry encoder for image layers.
//
// The reader is push-style and synchronous (write(chunk) calls the sink before it returns), so
// that the caller can hash the same bytes and apply backpressure simply by awaiting its source.
// It reads ustar, GNU (long names 'L'/'K') and pax ('x'/'g') archives, keeps pax values as bytes
// (SCHILY.xattr.* values are binary: tar's own Parser decodes them as UTF-8 and drops them), and is
// strict: a bad checksum, a malformed pax record or a truncated archive is an error, never a
// skipped entry. Types that carry no data (links, devices, dirs, fifos) never consume a body,
// whatever their size field says (as Go's archive/tar reads them: no smuggled entries).
//
// The encoder uses the tar package's Header for the ustar block and adds a pax header (path,
// linkpath, ids, size, SCHILY.xattr.*) when the entry needs one.
import type { Header as HeaderT } from 'tar';

let HeaderClass: typeof HeaderT | undefined;
function Header(): typeof HeaderT {
  // loaded on first use: nothing of the tar package on the paths that only read layers
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (HeaderClass ??= (require('tar') as typeof import('tar')).Header);
}

export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo' | 'other';

export interface TarEntry {
  path: string;
  type: EntryType;
  typeflag: string;
  mode: number;          // permission bits incl. setuid/setgid/sticky (mode & 0o7777)
  uid: number;
  gid: number;
  size: number;          // body bytes (0 for types without a body)
  mtime: number;         // seconds since the epoch (may be fractional, from pax)
  atime?: number;
  linkpath: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
}

export interface TarSink {
  entry(e: TarEntry): void;
  data(chunk: Buffer): void;
  end(): void;
}

export class TarFormatError extends Error {}

const BLOCK = 512;
const MAX_META = 16 << 20;

const TYPES: Record<string, EntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'link', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo',
};
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

function str(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z < 0 ? s : s.subarray(0, z)).toString('utf8');
}

function num(b: Buffer, off: number, len: number, field: string): number {
  if (b[off] & 0x80) {
    if (b[off] !== 0x80) throw new TarFormatError(`invalid tar header: negative or oversized ${field}`);
    let v = 0n;
    for (let i = off + 1; i < off + len; i++) v = (v << 8n) | BigInt(b[i]);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new TarFormatError(`invalid tar header: ${field} too large`);
    return Number(v);
  }
  // octal digits, optionally surrounded by spaces, ended by NUL or the end of the field
  // (a byte loop: this runs 7 times per entry, mostly before the JIT has seen it)
  const end = off + len;
  let i = off;
  while (i < end && b[i] === 0x20) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = b[i];
    if (c >= 0x30 && c <= 0x37) { v = v * 8 + (c - 0x30); digits++; continue; }
    break;
  }
  let j = i;
  while (j < end && b[j] === 0x20) j++;
  if (j < end && b[j] !== 0) {
    const s = b.subarray(off, end).toString('latin1').replace(/\0.*$/s, '').trim();
    throw new TarFormatError(`invalid tar header: ${field} "${s}" is not an octal number`);
  }
  return digits ? v : 0;
}

function checksumOK(b: Buffer): boolean {
  const stored = b.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  const want = parseInt(stored, 8);
  // unsigned and signed sums of the block with the checksum field as spaces; bytes > 127 (rare)
  // only make the signed sum differ
  let u = 0;
  let high = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = b[i];
    u += c;
    if (c > 127) high++;
  }
  for (let i = 148; i < 156; i++) {
    const c = b[i];
    u += 0x20 - c;
    if (c > 127) high--;
  }
  return want === u || want === u - 256 * high;
}

/** pax records "LEN key=value\n", values kept as bytes. */
export function parsePax(body: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break; // NUL padding
    const sp = body.indexOf(0x20, pos);
    const lenStr = sp < 0 ? '' : body.subarray(pos, sp).toString('latin1');
    const n = /^[0-9]+$/.test(lenStr) ? parseInt(lenStr, 10) : NaN;
    if (!(n > sp - pos + 1) || pos + n > body.length || body[pos + n - 1] !== 0x0a) throw new TarFormatError('invalid pax header record');
    const rec = body.subarray(sp + 1, pos + n - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new TarFormatError('invalid pax header record');
    out.set(rec.subarray(0, eq).toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    pos += n;
  }
  return out;
}

export class TarReader {
  private hdr = Buffer.alloc(BLOCK);
  private hdrFill = 0;
  private state: 'header' | 'body' | 'pad' | 'end' = 'header';
  private remain = 0;
  private pad = 0;
  private meta: { kind: string; parts: Buffer[]; len: number } | undefined;
  private sinkOpen = false;
  private local = new Map<string, Buffer>();
  private global = new Map<string, Buffer>();
  private longName: string | undefined;
  private longLink: string | undefined;
  private offset = 0;
  /** The end-of-archive marker was read (bytes after it are ignored). */
  ended = false;

  constructor(private readonly sink: TarSink) {}

  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && this.state !== 'end') {
      const avail = chunk.length - off;
      if (this.state === 'header') {
        const n = Math.min(BLOCK - this.hdrFill, avail);
        chunk.copy(this.hdr, this.hdrFill, off, off + n);
        this.hdrFill += n;
        off += n;
        if (this.hdrFill === BLOCK) {
          this.hdrFill = 0;
          this.header(this.hdr);
          this.offset += BLOCK;
        }
      } else if (this.state === 'body') {
        const n = Math.min(this.remain, avail);
        const part = chunk.subarray(off, off + n);
        off += n;
        this.remain -= n;
        this.offset += n;
        if (this.meta) {
          this.meta.parts.push(Buffer.from(part));
          this.meta.len += n;
        } else if (this.sinkOpen) this.sink.data(part);
        if (this.remain === 0) this.bodyDone();
      } else {
        const n = Math.min(this.pad, avail);
        off += n;
        this.pad -= n;
        this.offset += n;
        if (this.pad === 0) this.state = 'header';
      }
    }
  }

  /** At the end of the input: throws unless the archive ended cleanly. */
  finish(): void {
    if (this.state === 'end') return;
    if (this.state === 'header' && this.hdrFill === 0 && !this.meta && this.longName === undefined && this.longLink === undefined && this.local.size === 0) {
      // No end-of-archive blocks: accepted (many writers of layers omit them), nothing is cut short.
      this.ended = true;
      return;
    }
    throw new TarFormatError(`truncated tar archive (at byte ${this.offset + this.hdrFill})`);
  }

  private startBody(size: number): void {
    this.remain = size;
    this.pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size > 0) this.state = 'body';
    else this.bodyDone();
  }

  private bodyDone(): void {
    this.state = this.pad > 0 ? 'pad' : 'header';
    if (this.meta) {
      const m = this.meta;
      this.meta = undefined;
      const body = Buffer.concat(m.parts, m.len);
      if (m.kind === 'x') for (const [k, v] of parsePax(body)) this.local.set(k, v);
      else if (m.kind === 'g') for (const [k, v] of parsePax(body)) this.global.set(k, v);
      else if (m.kind === 'L') this.longName = str(body, 0, body.length);
      else if (m.kind === 'K') this.longLink = str(body, 0, body.length);
      return;
    }
    if (this.sinkOpen) {
      this.sinkOpen = false;
      this.sink.end();
    }
  }

  private header(b: Buffer): void {
    if (b[0] === 0 && b.every((x) => x === 0)) {
      // End of archive (one zero block is enough; what follows is padding).
      if (this.meta || this.longName !== undefined || this.longLink !== undefined || this.local.size) {
        throw new TarFormatError('tar archive ends after an extended header');
      }
      this.state = 'end';
      this.ended = true;
      return;
    }
    if (!checksumOK(b)) throw new TarFormatError(`invalid tar header at byte ${this.offset}: checksum mismatch`);
    const typeflag = String.fromCharCode(b[156]);
    const size = num(b, 124, 12, 'size');
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > MAX_META) throw new TarFormatError(`tar extended header of ${size} bytes is too large`);
      this.meta = { kind: typeflag, parts: [], len: 0 };
      this.startBody(size);
      return;
    }
    if (typeflag === 'S') throw new TarFormatError('GNU sparse files are not supported');
    const magic = b.subarray(257, 263).toString('latin1');
    const ustar = magic === 'ustar\0';
    let name = str(b, 0, 100);
    if (ustar) {
      const prefix = str(b, 345, 155);
      if (prefix) name = prefix + '/' + name;
    }
    const px = this.global.size ? new Map([...this.global, ...this.local]) : this.local;
    const pstr = (k: string) => px.get(k)?.toString('utf8');
    const pnum = (k: string): number | undefined => {
      const v = pstr(k);
      if (v === undefined || v === '') return undefined;
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new TarFormatError(`invalid pax ${k} "${v}"`);
      return n;
    };
    for (const k of px.keys()) if (k.startsWith('GNU.sparse.')) throw new TarFormatError('GNU sparse files are not supported');
    const path = this.local.get('path')?.toString('utf8') ?? this.longName ?? name;
    const linkpath = this.local.get('linkpath')?.toString('utf8') ?? this.longLink ?? str(b, 157, 100);
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of px) {
      if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice(13), v);
      else if (k.startsWith('LIBARCHIVE.xattr.')) {
        try { xattrs.set(decodeURIComponent(k.slice(17)), Buffer.from(v.toString('latin1'), 'base64')); } catch { /* malformed name: dropped */ }
      }
    }
    let type: EntryType = TYPES[typeflag] ?? 'other';
    if (typeflag === 'D') type = 'dir';
    if (type === 'file' && typeflag !== '7' && path.endsWith('/')) type = 'dir'; // old tars: dirs as files ending in "/"
    const bodySize = HEADER_ONLY.has(typeflag) ? 0 : (pnum('size') ?? size);
    const e: TarEntry = {
      path,
      type,
      typeflag,
      mode: num(b, 100, 8, 'mode') & 0o7777,
      uid: pnum('uid') ?? num(b, 108, 8, 'uid'),
      gid: pnum('gid') ?? num(b, 116, 8, 'gid'),
      size: type === 'dir' ? 0 : bodySize,
      mtime: pnum('mtime') ?? num(b, 136, 12, 'mtime'),
      atime: pnum('atime'),
      linkpath,
      devmajor: magic.startsWith('ustar') ? num(b, 329, 8, 'devmajor') : 0,
      devminor: magic.startsWith('ustar') ? num(b, 337, 8, 'devminor') : 0,
      xattrs,
    };
    this.local.clear();
    this.longName = undefined;
    this.longLink = undefined;
    this.sinkOpen = true;
    this.sink.entry(e);
    this.startBody(bodySize);
  }
}

// ---- writing ----------------------------------------------------------------------------------

export interface TarHeaderData {
  path: string;           // relative, dirs with a trailing "/"
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;          // seconds
  linkpath?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

const HEADER_TYPE: Record<EntryType, string> = {
  file: 'File', link: 'Link', symlink: 'SymbolicLink', char: 'CharacterDevice', block: 'BlockDevice',
  dir: 'Directory', fifo: 'FIFO', other: 'File',
};

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + String(body.length).length;
  if (String(len).length !== String(body.length).length) len = body.length + String(len).length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

const MAX_OCTAL_8 = 0o7777777;
const MAX_OCTAL_12 = 0o77777777777;

/** The header block(s) of one entry: a pax header when needed, then the ustar block. */
export function encodeHeader(d: TarHeaderData): Buffer {
  const mtime = Math.floor(d.mtime);
  const H = Header();
  const h = new H({
    path: d.path, mode: d.mode & 0o7777, uid: d.uid, gid: d.gid, size: d.size,
    mtime: new Date(mtime * 1000), type: HEADER_TYPE[d.type] as never, linkpath: d.linkpath ?? '',
    uname: '', gname: '', devmaj: d.devmajor ?? 0, devmin: d.devminor ?? 0,
  });
  const needPax = h.encode();
  const block = h.block!;
  const recs: Buffer[] = [];
  if (needPax || Buffer.byteLength(d.path) >= 100) recs.push(paxRecord('path', Buffer.from(d.path)));
  if (d.linkpath && (needPax || Buffer.byteLength(d.linkpath) >= 100)) recs.push(paxRecord('linkpath', Buffer.from(d.linkpath)));
  if (d.uid > MAX_OCTAL_8) recs.push(paxRecord('uid', Buffer.from(String(d.uid))));
  if (d.gid > MAX_OCTAL_8) recs.push(paxRecord('gid', Buffer.from(String(d.gid))));
  if (d.size > MAX_OCTAL_12) recs.push(paxRecord('size', Buffer.from(String(d.size))));
  for (const [k, v] of [...(d.xattrs ?? new Map<string, Buffer>())].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    recs.push(paxRecord('SCHILY.xattr.' + k, v));
  }
  if (!recs.length) return block;
  const body = Buffer.concat(recs);
  const base = d.path.replace(/\/+$/, '').split('/').pop() || '.';
  const ph = new H({
    path: ('PaxHeaders.0/' + base).slice(0, 99), mode: 0o644, uid: 0, gid: 0, size: body.length,
    mtime: new Date(mtime * 1000), type: 'ExtendedHeader', linkpath: '', uname: '', gname: '',
  });
  ph.encode();
  return Buffer.concat([ph.block!, body, Buffer.alloc(padding(body.length)), block]);
}

export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Two zero blocks: the end of an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
