import { type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';

// `tsrun image SUBCOMMAND`: the same commands as the top-level aliases.
const SUB: Record<string, () => { default: (argv: string[], g: Globals) => Promise<number> | number }> = {
  ls: () => require('./images'), list: () => require('./images'),
  inspect: () => require('./inspect'), history: () => require('./history'), tag: () => require('./tag'),
  rm: () => require('./rmi'), remove: () => require('./rmi'), prune: () => require('./image-prune'),
  pull: () => require('./pull'), push: () => require('./push'), save: () => require('./save'), load: () => require('./load'),
  import: () => require('./import'),
};

export default function (argv: string[], g: Globals): Promise<number> | number {
  const sub = argv[0];
  if (sub === '--help' || sub === 'help') { process.stdout.write(`\nUsage:  tsrun image COMMAND\n\nManage images\n\nCommands:\n  ${Object.keys(SUB).join(', ')}\n`); return 0; }
  if (!sub || !SUB[sub]) throw new TsrunError(`image: unknown subcommand "${sub ?? ''}" (ls, inspect, history, tag, rm, prune, pull, push, save, load, import)`);
  if (sub === 'inspect') return (require('./inspect') as typeof import('./inspect')).inspectImages(argv.slice(1), g);
  return SUB[sub]().default(argv.slice(1), g);
}
