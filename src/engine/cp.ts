// docker cp, both directions, through the container's merged rootfs. Paths inside the container are
// resolved the way the kernel's RESOLVE_IN_ROOT does: every symlink is followed relative to the
// container's root, so `/etc -> /` or `x -> ../../../../host` can never lead out of it.
import fs = require('fs');
import path = require('path');
import { TsrunError } from '../runtime/errors';
import { ImageStore, snapshotDirs, mountSnapshot, unmountSnapshot } from '../image/store';
import { findContainer } from './containers';

/** Host path of `p` inside `root`, symlinks resolved within root (the last one too unless noFollowLast). */
export function resolveInRoot(root: string, p: string, noFollowLast = false): string {
  const parts = p.split('/').filter((x) => x && x !== '.');
  const done: string[] = [];
  let hops = 0;
  while (parts.length) {
    const part = parts.shift()!;
    if (part === '..') { done.pop(); continue; }
    const host = path.join(root, ...done, part);
    let st: fs.Stats | undefined;
    try { st = fs.lstatSync(host); } catch { st = undefined; }
    if (st?.isSymbolicLink() && (parts.length || !noFollowLast)) {
      if (++hops > 40) throw new TsrunError(`${p}: too many levels of symbolic links`);
      const target = fs.readlinkSync(host);
      if (target.startsWith('/')) done.length = 0;
      parts.unshift(...target.split('/').filter((x) => x && x !== '.'));
      continue;
    }
    done.push(part);
  }
  return path.join(root, ...done);
}

function splitArg(a: string): { container?: string; path: string } {
  const m = /^([a-zA-Z0-9][a-zA-Z0-9_.-]*):(.*)$/.exec(a);
  if (m && !a.startsWith('/') && !a.startsWith('.')) return { container: m[1], path: m[2] || '/' };
  return { path: a };
}

export async function cp(root: string, srcArg: string, dstArg: string): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tar = require('tar') as typeof import('tar');
  const src = splitArg(srcArg), dst = splitArg(dstArg);
  if (!!src.container === !!dst.container) throw new TsrunError('copying between containers is not supported: one of SRC and DEST must be CONTAINER:PATH, the other a local path');
  const key = (src.container ?? dst.container)!;
  const c = findContainer(root, key);
  const { merged } = snapshotDirs(root, c.id);
  const wasMounted = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === merged);
  if (!wasMounted) mountSnapshot(root, c.id, new ImageStore(root).layers, c.chainId);
  try {
    if (src.container) {
      // out of the container
      const from = resolveInRoot(merged, src.path, !src.path.endsWith('/'));
      let st: fs.Stats;
      try { st = fs.lstatSync(from); } catch { throw new TsrunError(`Could not find the file ${src.path} in container ${key}`); }
      let to = dst.path === '-' ? '-' : path.resolve(dst.path);
      if (to === '-') {
        await new Promise<void>((res, rej) => {
          const s = tar.create({ cwd: path.dirname(from) }, [path.basename(from)]) as unknown as NodeJS.ReadableStream;
          s.on('error', rej); s.on('end', () => res()); s.pipe(process.stdout);
        });
        return;
      }
      if (fs.existsSync(to) && fs.statSync(to).isDirectory()) to = path.join(to, path.basename(from));
      else if (!fs.existsSync(path.dirname(to))) throw new TsrunError(`no such directory: ${path.dirname(to)}`);
      if (st.isFile()) {
        fs.copyFileSync(from, to);
        fs.chmodSync(to, st.mode & 0o7777);
        return;
      }
      const tmp = fs.mkdtempSync(path.join(path.dirname(to), '.tsrun-cp-'));
      try {
        await tar.create({ cwd: path.dirname(from), file: path.join(tmp, 'x.tar') }, [path.basename(from)]);
        fs.mkdirSync(to, { recursive: true });
        await tar.extract({ cwd: to, file: path.join(tmp, 'x.tar'), strip: 1 });
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    } else {
      // into the container: the destination dir is resolved inside the root; tar refuses to write through symlinks
      const from = path.resolve(src.path);
      let st: fs.Stats;
      try { st = fs.lstatSync(from); } catch { throw new TsrunError(`no such file or directory: ${src.path}`); }
      let dest = resolveInRoot(merged, dst.path);
      let name = path.basename(from);
      if (!(fs.existsSync(dest) && fs.statSync(dest).isDirectory())) {
        name = path.basename(dest);
        dest = resolveInRoot(merged, path.posix.dirname(dst.path));
        if (!fs.existsSync(dest)) throw new TsrunError(`Could not find the file ${path.posix.dirname(dst.path)} in container ${key}`);
      }
      if (st.isFile()) {
        const target = path.join(dest, name);
        let lst: fs.Stats | undefined;
        try { lst = fs.lstatSync(target); } catch { /* new file */ }
        if (lst?.isSymbolicLink()) fs.unlinkSync(target); // never write through a link
        fs.copyFileSync(from, target);
        fs.chmodSync(target, st.mode & 0o7777);
        return;
      }
      const tmp = fs.mkdtempSync(path.join(path.dirname(snapshotDirs(root, c.id).upper), '.cp-'));
      try {
        await tar.create({ cwd: path.dirname(from), file: path.join(tmp, 'x.tar') }, [path.basename(from)]);
        const into = path.join(dest, name);
        fs.mkdirSync(into, { recursive: true });
        await tar.extract({ cwd: into, file: path.join(tmp, 'x.tar'), strip: 1, preservePaths: false });
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    }
  } finally {
    if (!wasMounted) unmountSnapshot(root, c.id);
  }
}
