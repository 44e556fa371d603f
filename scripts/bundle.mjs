// Bundles the CLI into one CommonJS file, bin/tsrun: no ESM, no node_modules on the start path.
import { build } from 'esbuild';
import { chmodSync } from 'fs';
await build({
  entryPoints: ['src/cli/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: 'bin/tsrun',
  banner: { js: '#!/usr/bin/env node' },
  external: ['*.node', 'koffi'],
  logLevel: 'warning',
});
chmodSync('bin/tsrun', 0o755);
