// Loads dist/engine.js (with its V8 code cache, through bin/tsrun's loader when present).
import path = require('path');
import type { Globals } from './args';
import { trace } from '../runtime/trace';

type Engine = typeof import('./engine');
let engine: Engine | undefined;

export function loadEngine(): Engine {
  if (engine) return engine;
  const file = path.join(__dirname, 'engine.js');
  const viaLoader = (globalThis as { __tsrunRequire?: (f: string) => unknown }).__tsrunRequire;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  trace('engine: load');
  engine = (viaLoader ? viaLoader(file) : require(file)) as Engine;
  trace('engine: loaded');
  return engine;
}

export function engineCommand(name: string, argv: string[], g: Globals): Promise<number> | number {
  return loadEngine().COMMANDS[name]().default(argv, g);
}
