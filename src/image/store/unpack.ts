// Applying one layer tar to a directory, safely.
//
// The target dir is private to us while we unpack (a fresh temp dir, mode 0700, that nobody else
// writes), so checking paths with lstat and then using them is free of races. Every entry is
// confined to the dir:
//   - absolute paths and paths that climb out with ".." are refused;
//   - every parent component must be a real directory: a symlink anywhere in the parent path is
//     refused (entry "a -> /etc" followed by "a/passwd"), as is a parent that is not a directory;
//   - the final component is never followed: an existing entry is removed first and the new one
//     is created exclusively (O_CREAT|O_EXCL|O_NOFOLLOW for files);
//   - hardlink targets obey the same rules, must already exist in this layer, must not be
//     directories, nor symlinks that point outside the layer;
//   - xattrs that would steer overlayfs (trusted.overlay.*, user.overlay.*) are dropped.
// OCI whiteouts become overlayfs ones: ".wh.NAME" a 0/0 character device NAME, ".wh..wh..opq" the
// xattr trusted.overlay.opaque=y on its directory. Ownership, modes (setuid bits after chown),
// xattrs and times are kept; directory times are set last (children change them).
import fs = require('fs');
import path = require('path');
import { mknod, lsetxattr, S_IFCHR, S_IFBLK, S_IFIFO, FsError } from '../../kernel/fsops';
import type { TarEntry, TarSink } from './tar';
import { errCode, lstatOrNull } from './util';

export class UnpackError extends Error {}

const OPAQUE = '.wh..wh..opq';
const OPAQUE_XATTR = 'trusted.overlay.opaque';
const isWhiteout = (st: fs.Stats) => st.isCharacterDevice() && st.rdev === 0;
const WH = '.wh.';
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_CLOEXEC } = fs.constants as typeof fs.constants & { O_CLOEXEC?: number };
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | (O_CLOEXEC ?? 0o2000000);
const EUID = process.geteuid?.() ?? -1;
const EGID = process.getegid?.() ?? -1;

/** Lexically clean a tar path; '' is the layer root. Throws for absolute or escaping paths. */
export function cleanPath(p: string, entry: string, what = 'path'): string {
  if (p.includes('\0')) throw new UnpackError(`entry "${entry}": NUL byte in the ${what}`);
  // Fast path, for the usual "a/b/c", "./a/b" and "a/b/": nothing for normalize() to do.
  let q = p.startsWith('./') ? p.slice(2) : p;
  if (q.endsWith('/')) q = q.slice(0, -1);
  if (q && q[0] !== '/' && q[0] !== '.' && !q.includes('/.') && !q.includes('//') && !q.endsWith('/')) return q;
  if (p.startsWith('/')) throw new UnpackError(`entry "${entry}": absolute ${what} escapes the layer`);
  let n = path.posix.normalize(p);
  n = n.replace(/\/+$/, '');
  if (n === '.' || n === '') return '';
  if (n === '..' || n.startsWith('../')) throw new UnpackError(`entry "${entry}": ${what} escapes the layer`);
  return n;
}

export class LayerUnpacker implements TarSink {
  /** Bytes of regular files written. */
  size = 0;
  private readonly dirs = new Set<string>(['']);        // relative paths known to be real dirs
  private readonly dirTimes = new Map<string, [number, number]>();
  private readonly setgidDirs = new Set<string>();         // dirs of this layer with the setgid bit
  private fresh = false;                                   // the open file was created by us
  private fd = -1;
  private cur: TarEntry | undefined;
  private curRel = '';

  constructor(private readonly dir: string) {}

  private abs(rel: string): string {
    return rel ? path.join(this.dir, rel) : this.dir;
  }

  entry(e: TarEntry): void {
    this.cur = e;
    try {
      this.apply(e);
    } catch (err) {
      this.closeFd();
      if (err instanceof UnpackError) throw err;
      throw new UnpackError(`entry "${e.path}": ${(err as Error).message}`);
    }
  }

  data(chunk: Buffer): void {
    if (this.fd < 0) return; // bodies of entries we do not write (dumpdirs, unknown types)
    try {
      let off = 0;
      while (off < chunk.length) off += fs.writeSync(this.fd, chunk, off, chunk.length - off);
    } catch (err) {
      this.closeFd();
      throw new UnpackError(`entry "${this.cur?.path}": write: ${(err as Error).message}`);
    }
  }

  end(): void {
    if (this.fd < 0) return;
    const e = this.cur!;
    const fd = this.fd;
    try {
      if (!this.ownedAs(this.curRel, e.uid, e.gid)) fs.fchownSync(fd, e.uid, e.gid);
      fs.fchmodSync(fd, e.mode);
      this.setXattrs(this.curRel, e, false);
      fs.futimesSync(fd, e.atime ?? e.mtime, e.mtime);
    } catch (err) {
      this.closeFd();
      if (err instanceof UnpackError) throw err;
      throw new UnpackError(`entry "${e.path}": ${(err as Error).message}`);
    }
    this.closeFd();
  }

  /** After the last entry: directory times, deepest first. */
  finish(): void {
    const rels = [...this.dirTimes.keys()].sort((a, b) => b.split('/').length - a.split('/').length);
    for (const rel of rels) {
      if (!this.dirs.has(rel)) continue;
      const [at, mt] = this.dirTimes.get(rel)!;
      try {
        fs.utimesSync(this.abs(rel), at, mt);
      } catch (err) {
        if (errCode(err) !== 'ENOENT') throw new UnpackError(`directory "${rel}": utimes: ${(err as Error).message}`);
      }
    }
  }

  /** Releases an open file after a failure elsewhere. */
  abort(): void {
    this.closeFd();
  }

  /** Whether a new entry in the parent of rel is owned by uid:gid already (we created it, and
   *  the parent is not setgid, which would give it the parent's group). */
  private ownedAs(rel: string, uid: number, gid: number): boolean {
    if (uid !== EUID || gid !== EGID) return false;
    const slash = rel.lastIndexOf('/');
    return !this.setgidDirs.has(slash < 0 ? '' : rel.slice(0, slash));
  }

  private closeFd(): void {
    if (this.fd >= 0) {
      try { fs.closeSync(this.fd); } catch { /* already failing */ }
      this.fd = -1;
    }
  }

  private fail(e: TarEntry, why: string): never {
    throw new UnpackError(`entry "${e.path}": ${why}`);
  }

  /** Make sure every parent of rel is a real directory inside the layer (creating missing ones). */
  private parents(rel: string, e: TarEntry, create: boolean): void {
    const slash = rel.lastIndexOf('/');
    if (slash < 0 || this.dirs.has(rel.slice(0, slash))) return; // every dir in `dirs` has its parents checked
    const parts = rel.split('/');
    let cur = '';
    for (let i = 0; i < parts.length - 1; i++) {
      cur = cur ? cur + '/' + parts[i] : parts[i];
      if (this.dirs.has(cur)) continue;
      const st = lstatOrNull(this.abs(cur));
      if (!st || (create && isWhiteout(st))) {
        if (!create) this.fail(e, `parent "${cur}" does not exist in the layer`);
        // a missing parent is created; a whited-out one becomes an opaque dir (it replaces the lower one)
        if (st) fs.unlinkSync(this.abs(cur));
        fs.mkdirSync(this.abs(cur), 0o755);
        fs.chmodSync(this.abs(cur), 0o755);
        if (st) lsetxattr(this.abs(cur), OPAQUE_XATTR, 'y');
        this.dirs.add(cur);
      } else if (st.isSymbolicLink()) {
        this.fail(e, `parent "${cur}" is a symlink: entries are never written through symlinks`);
      } else if (!st.isDirectory()) {
        this.fail(e, `parent "${cur}" is not a directory`);
      } else {
        this.dirs.add(cur);
      }
    }
  }

  /** Remove what is at rel (unless it is a directory and keepDir): what was there. */
  private clear(rel: string, keepDir: boolean): 'dir' | 'whiteout' | 'other' | undefined {
    const p = this.abs(rel);
    const st = lstatOrNull(p);
    if (!st) return undefined;
    if (st.isDirectory()) {
      if (keepDir) {
        this.dirs.add(rel);
        return 'dir';
      }
      fs.rmSync(p, { recursive: true, force: true });
      this.forget(rel);
      return 'other';
    }
    fs.unlinkSync(p);
    return isWhiteout(st) ? 'whiteout' : 'other';
  }

  /**
   * Creates rel with make() (which fails with EEXIST when something is there: O_EXCL, symlink):
   * most entries of a layer are new, so no lstat first; what is there is removed and make() runs
   * again.
   */
  private create<T>(rel: string, make: () => T): T {
    try {
      return make();
    } catch (err) {
      if (errCode(err) !== 'EEXIST') throw err;
    }
    this.clear(rel, false);
    return make();
  }

  private forget(rel: string): void {
    const pre = rel + '/';
    for (const d of [...this.dirs]) if (d === rel || d.startsWith(pre)) this.dirs.delete(d);
    for (const d of [...this.dirTimes.keys()]) if (d === rel || d.startsWith(pre)) this.dirTimes.delete(d);
  }

  private setXattrs(rel: string, e: TarEntry, symlink: boolean): void {
    for (const [name, value] of e.xattrs) {
      if (/^(trusted|user)\.overlay\./.test(name)) continue;
      try {
        lsetxattr(this.abs(rel), name, value);
      } catch (err) {
        // Like docker: file systems and namespaces that refuse some attributes are not fatal
        // (user.* on symlinks is EPERM by design).
        const c = (err as FsError).code;
        if (c === 'ENOTSUP' || c === 'EOPNOTSUPP' || c === 'EPERM' || (symlink && c === 'EACCES')) continue;
        throw err;
      }
    }
  }

  private apply(e: TarEntry): void {
    const rel = cleanPath(e.path, e.path);
    const base = rel.split('/').pop() ?? '';
    // OCI whiteouts
    if (base === OPAQUE) {
      this.parents(rel, e, true);
      const dirRel = rel.slice(0, Math.max(0, rel.length - OPAQUE.length - 1));
      lsetxattr(this.abs(dirRel), OPAQUE_XATTR, 'y');
      return;
    }
    if (base.startsWith(WH + WH)) return; // aufs metadata (.wh..wh.plnk, ...): not for overlayfs
    if (base.startsWith(WH)) {
      const name = base.slice(WH.length);
      if (!name || name === '.' || name === '..' || name.includes('/')) this.fail(e, 'invalid whiteout name');
      const target = rel.slice(0, rel.length - base.length) + name;
      this.parents(target, e, true);
      // A whiteout hides the lower layers only, never what this layer itself holds (OCI image
      // spec): over a dir of this layer it makes that dir opaque; over a file it has nothing to do.
      const st = lstatOrNull(this.abs(target));
      if (st?.isDirectory()) lsetxattr(this.abs(target), OPAQUE_XATTR, 'y');
      else if (!st) mknod(this.abs(target), S_IFCHR | 0, 0, 0);
      return;
    }
    if (rel === '' && e.type !== 'dir') {
      if (e.type === 'other') return;
      this.fail(e, 'the layer root can only be a directory');
    }
    switch (e.type) {
      case 'dir': {
        let created = false;
        if (rel) {
          this.parents(rel, e, true);
          const was = this.dirs.has(rel) ? 'dir' : this.clear(rel, true);
          if (was !== 'dir') fs.mkdirSync(this.abs(rel), 0o700);
          // replacing this layer's whiteout: the new dir must not merge with the lower one
          if (was === 'whiteout') lsetxattr(this.abs(rel), OPAQUE_XATTR, 'y');
          created = was !== 'dir';
        }
        const p = this.abs(rel);
        if (!(created && this.ownedAs(rel, e.uid, e.gid))) fs.lchownSync(p, e.uid, e.gid);
        fs.chmodSync(p, e.mode);
        if (e.mode & 0o2000) this.setgidDirs.add(rel); else this.setgidDirs.delete(rel);
        this.setXattrs(rel, e, false);
        this.dirs.add(rel);
        this.dirTimes.set(rel, [e.atime ?? e.mtime, e.mtime]);
        return;
      }
      case 'file': {
        this.parents(rel, e, true);
        this.fd = this.create(rel, () => fs.openSync(this.abs(rel), CREATE_FLAGS, 0o600));
        this.curRel = rel;
        this.size += e.size;
        return;
      }
      case 'symlink': {
        if (e.linkpath.includes('\0')) this.fail(e, 'NUL byte in the symlink target');
        if (!e.linkpath) this.fail(e, 'empty symlink target');
        this.parents(rel, e, true);
        this.create(rel, () => fs.symlinkSync(e.linkpath, this.abs(rel)));
        if (!this.ownedAs(rel, e.uid, e.gid)) fs.lchownSync(this.abs(rel), e.uid, e.gid);
        this.setXattrs(rel, e, true);
        fs.lutimesSync(this.abs(rel), e.atime ?? e.mtime, e.mtime);
        return;
      }
      case 'link': {
        const target = cleanPath(e.linkpath, e.path, `hardlink target "${e.linkpath}"`);
        if (!target) this.fail(e, 'hardlink to the layer root');
        this.parents(target, e, false);
        const st = lstatOrNull(this.abs(target));
        if (!st) this.fail(e, `hardlink target "${e.linkpath}" is not in the layer`);
        if (st.isDirectory()) this.fail(e, `hardlink target "${e.linkpath}" is a directory`);
        if (st.isSymbolicLink()) {
          const to = fs.readlinkSync(this.abs(target));
          const joined = path.posix.normalize(path.posix.join(path.posix.dirname(target), to));
          if (to.startsWith('/') || joined === '..' || joined.startsWith('../')) {
            this.fail(e, `hardlink target "${e.linkpath}" is a symlink pointing outside the layer`);
          }
        }
        if (target === rel) return;
        this.parents(rel, e, true);
        this.clear(rel, false);
        fs.linkSync(this.abs(target), this.abs(rel)); // link(2) never follows a symlink target
        return;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        this.parents(rel, e, true);
        this.clear(rel, false);
        const t = e.type === 'char' ? S_IFCHR : e.type === 'block' ? S_IFBLK : S_IFIFO;
        mknod(this.abs(rel), t | (e.mode & 0o777), e.devmajor, e.devminor);
        fs.lchownSync(this.abs(rel), e.uid, e.gid);
        fs.chmodSync(this.abs(rel), e.mode);
        this.setXattrs(rel, e, false);
        fs.lutimesSync(this.abs(rel), e.atime ?? e.mtime, e.mtime);
        return;
      }
      default:
        return; // unknown types (volume labels, ...) are skipped
    }
  }
}
