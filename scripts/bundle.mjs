// Bundles the CLI into one CommonJS file (bin/tsrun.js): no ESM, no node_modules on the start path.
import { build } from 'esbuild';
await build({
  entryPoints: ['src/cli/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: 'dist/tsrun.js',
  external: ['*.node'],
  splitting: false,
  minify: false,
  sourcemap: false,
  logLevel: 'warning',
});
