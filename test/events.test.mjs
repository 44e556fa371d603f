// docker's `events`: what the CLI and the supervisor append to <root>/events.jsonl, printed like
// docker (--since/--until, --filter, --format), and followed live without --until.
import test from 'ava';
import { uniqueId, describe, tsrunOnly, waitFor, withEngineImage } from './helpers/index.mjs';

const t2 = tsrunOnly(test);

t2('events --since/--until: the lifecycle of a container, with filters and formats', async t => {
  const { r } = await withEngineImage(t);
  const name = uniqueId('ev');
  const run = await r(['run', '-d', '--name', name, '--label', 'tier=web', 'test/bb:1', 'sh', '-c', 'exit 3']);
  t.is(run.code, 0);
  const id = run.stdout.trim();
  await waitFor(async () => JSON.parse((await r(['inspect', name])).stdout)[0].State.Status === 'exited', { what: 'exit' });
  const p = uniqueId('evp');
  t.is((await r(['run', '-d', '--name', p, 'test/bb:1', 'sleep', '1000'])).code, 0);
  t.is((await r(['pause', p])).code, 0);
  t.is((await r(['unpause', p])).code, 0);
  t.is((await r(['kill', '-s', 'USR1', p])).code, 0);
  const pe = await r(['events', '--since', '10m', '--until', '0s', '--filter', `container=${p}`, '--format', '{{.Action}} {{.Actor.Attributes.signal}}']);
  t.deepEqual(pe.stdout.trim().split('\n').slice(0, 5), ['create <no value>', 'start <no value>', 'pause <no value>', 'unpause <no value>', 'kill 10'], pe.stdout);
  t.is((await r(['rm', '-f', p])).code, 0);
  t.is((await r(['start', name])).code, 0);
  t.is((await r(['stop', '-t', '1', name])).code, 0);
  const renamed = uniqueId('ev2');
  t.is((await r(['rename', name, renamed])).code, 0);
  t.is((await r(['rm', renamed])).code, 0);
  const all = await r(['events', '--since', '10m', '--until', '0s', '--filter', `container=${id.slice(0, 12)}`]);
  t.is(all.code, 0, describe(all));
  const lines = all.stdout.trim().split('\n');
  const re = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z container (\w+) ([0-9a-f]{64}) \((.*)\)$/;
  for (const l of lines) t.regex(l, re);
  const actions = lines.map(l => re.exec(l)[1]);
  t.deepEqual(actions.filter(a => a !== 'kill' && a !== 'stop' && a !== 'die'), ['create', 'start', 'start', 'rename', 'destroy']);
  t.is(actions.filter(a => a === 'die').length, 2, all.stdout);
  t.true(actions.indexOf('die') > actions.indexOf('start'));
  // the supervisor's die line gets the name and image from the container's other events
  const die = lines.find(l => / die /.test(l));
  t.regex(die, new RegExp(`\\(exitCode=3, image=test/bb:1, name=${name}, tier=web\\)$`));
  t.regex(lines.find(l => / rename /.test(l)), new RegExp(`name=${renamed}, oldName=/${name}`));

  const json = await r(['events', '--since', '10m', '--until', '0s', '--filter', 'event=die', '--format', '{{json .}}']);
  const objs = json.stdout.trim().split('\n').map(l => JSON.parse(l));
  t.is(objs.length, 2);
  t.like(objs[0], { status: 'die', from: 'test/bb:1', Type: 'container', Action: 'die', scope: 'local', Actor: { Attributes: { exitCode: '3', name } } });
  t.is(objs[0].id, objs[0].Actor.ID);
  t.regex(json.stdout, /"timeNano":\d{19}\}/, 'timeNano in full (beyond 2^53)');
  t.is(Math.floor(Number(/"timeNano":(\d+)/.exec(json.stdout)[1]) / 1e9), objs[0].time);

  const tpl = await r(['events', '--since', '10m', '--until', '0s', '--filter', `container=${renamed}`, '--filter', 'label=tier=web', '--format', '{{.Action}} {{.Actor.Attributes.name}}']);
  t.is(tpl.stdout, `rename ${renamed}\ndestroy ${renamed}\n`);
  const none = await r(['events', '--since', '10m', '--until', '0s', '--filter', 'type=image']);
  t.is(none.stdout, '');
  const future = await r(['events', '--since', String(Math.floor(Date.now() / 1000) + 3600), '--until', '0s']);
  t.is(future.stdout, '', '--since in unix seconds');
  const bad = await r(['events', '--since', 'yesterday-ish', '--until', '0s']);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /invalid value for "since"/);
});

t2('events without --until follows new events until interrupted', async t => {
  const { r } = await withEngineImage(t);
  const name = uniqueId('evf');
  // --since just before: when `events` is slow to start (a loaded machine), what it missed
  // comes from the history instead of being lost; normally it is following by the time the
  // container runs (it is given 800 ms), and the events come through the follow loop.
  const since = String(Math.floor(Date.now() / 1000) - 1);
  const ev = r.spawn(['events', '--since', since, '--filter', `container=${name}`, '--format', '{{.Action}}']);
  await new Promise(res => setTimeout(res, 800));
  t.is((await r(['run', '--rm', '--name', name, 'test/bb:1', 'true'])).code, 0);
  await ev.waitFor('destroy', 15_000);
  ev.kill('SIGTERM');
  const res = await ev.done;
  t.is(res.stdout, 'create\nstart\ndie\ndestroy\n');
  t.is(res.code, 0, describe(res));
});

t2('image events: tag, untag, delete', async t => {
  const { r } = await withEngineImage(t);
  t.is((await r(['tag', 'test/bb:1', 'test/other:2'])).code, 0);
  t.is((await r(['rmi', 'test/other:2'])).code, 0);
  t.is((await r(['rmi', 'test/bb:1'])).code, 0);
  const res = await r(['events', '--since', '10m', '--until', '0s', '--filter', 'type=image', '--format', '{{.Action}} {{.Actor.Attributes.name}} {{.id}}']);
  t.is(res.code, 0, describe(res));
  const lines = res.stdout.trim().split('\n');
  t.is(lines.length, 4, res.stdout);
  t.regex(lines[0], /^tag test\/other:2 sha256:[0-9a-f]{64}$/);
  t.regex(lines[1], /^untag test\/other:2 sha256:[0-9a-f]{64}$/);
  t.regex(lines[2], /^untag test\/bb:1 sha256:[0-9a-f]{64}$/);
  t.regex(lines[3], /^delete <no value> sha256:[0-9a-f]{64}$/);
  const id = lines[0].split(' ')[2];
  t.true(lines.every(l => l.endsWith(id)), 'the same image id');
});

t2('volume events: create and destroy (named, and an anonymous one that goes with its --rm container); --filter volume=', async t => {
  const { r } = await withEngineImage(t);
  const v = uniqueId('vol');
  t.is((await r(['volume', 'create', v])).code, 0);
  t.is((await r(['run', '--rm', '-v', `${v}:/data`, '-v', '/anon', 'test/bb:1', 'true'])).code, 0);
  t.is((await r(['volume', 'rm', v])).code, 0);
  const res = await r(['events', '--since', '10m', '--until', '0s', '--filter', 'type=volume', '--format', '{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}']);
  t.is(res.code, 0, describe(res));
  const lines = res.stdout.trim().split('\n');
  t.is(lines.length, 4, res.stdout);
  t.is(lines[0], `create ${v} local`);
  t.regex(lines[1], /^create [0-9a-f]{64} local$/);
  t.is(lines[2].replace(/ [0-9a-f]{64} /, ' ANON '), 'destroy ANON local', 'the anonymous volume goes with the --rm container');
  t.is(lines[3], `destroy ${v} local`);
  const one = await r(['events', '--since', '10m', '--until', '0s', '--filter', `volume=${v}`, '--format', '{{.Type}} {{.Action}}']);
  t.is(one.stdout, 'volume create\nvolume destroy\n');
  const bad = await r(['events', '--since', '10m', '--until', '0s', '--filter', 'colour=red']);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /invalid filter 'colour'/);
});
