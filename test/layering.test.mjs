// The layering rules of ARCHITECTURE.md, checked rather than hoped for: only src/kernel loads
// the FFI (koffi, .node files, the shim), and src/runtime never imports src/cli.
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO } from './helpers/runtime.mjs';

function files(dir) {
  return readdirSync(dir).flatMap(n => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const SRC = join(REPO, 'src');
const imports = f => [...readFileSync(f, 'utf8').matchAll(/(?:from\s+|require\(\s*|import\(\s*)['"]([^'"]+)['"]/g)].map(m => m[1]);

test('only src/kernel loads koffi or native code', t => {
  for (const f of files(SRC)) {
    const rel = relative(SRC, f);
    if (rel.startsWith('kernel/')) continue;
    for (const m of imports(f)) {
      t.false(m === 'koffi' || m.endsWith('.node') || m.includes('libtsrun'), `${rel} imports ${m}`);
    }
  }
});

test('src/runtime never imports src/cli', t => {
  for (const f of files(join(SRC, 'runtime'))) {
    for (const m of imports(f)) t.false(/(^|\/)cli(\/|$)/.test(m), `${relative(SRC, f)} imports ${m}`);
  }
});
