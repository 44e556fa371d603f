// docker diff: what a container changed, read from its overlay upper directory. A whiteout is a
// deletion (D); anything else is a change (C) where the image has that path, else an addition (A).
// Directories on the way to a change are themselves changed, as docker reports them.
import fs = require('fs');
import path = require('path');
import { TsrunError } from '../runtime/errors';
import { ImageStore, snapshotDirs } from '../image/store';
import { findContainer } from './containers';

export interface Change { Kind: 0 | 1 | 2; Path: string } // docker's: 0 modified, 1 added, 2 deleted

const isWhiteout = (s: fs.Stats) => s.isCharacterDevice() && s.rdev === 0;

export function containerChanges(root: string, key: string): Change[] {
  const c = findContainer(root, key);
  const { upper } = snapshotDirs(root, c.id);
  if (!fs.existsSync(upper)) throw new TsrunError(`container ${c.id.slice(0, 12)} has no writable layer`, 1);
  const lowers = c.chainId ? new ImageStore(root).layers.lowerDirs(c.chainId) : [];
  /** Whether the image (its layers top down: the first one that has the path decides) has p. */
  const inImage = (p: string): boolean => {
    for (const l of lowers) {
      let s: fs.Stats;
      try { s = fs.lstatSync(path.join(l, p)); } catch { continue; }
      return !isWhiteout(s);
    }
    return false;
  };
  const out: Change[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(upper, rel))) {
      const r = `${rel}/${name}`;
      const s = fs.lstatSync(path.join(upper, r));
      if (isWhiteout(s)) { out.push({ Kind: 2, Path: r }); continue; }
      out.push({ Kind: inImage(r) ? 0 : 1, Path: r });
      if (s.isDirectory()) walk(r);
    }
  };
  walk('');
  return out.sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0));
}
