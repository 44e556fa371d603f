// --format templates: the Go text/template subset of src/cli/template.ts, bundled on the fly
// (esbuild, a devDependency) and checked against what Go's text/template prints for the same data.
import test from 'ava';
import { build } from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './helpers/index.mjs';

let render;
test.before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsrun-tpl-'));
  const out = join(dir, 'template.cjs');
  await build({ entryPoints: [join(REPO, 'src', 'cli', 'template.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: out, logLevel: 'error' });
  render = createRequire(import.meta.url)(out).renderTemplate;
  rmSync(dir, { recursive: true, force: true });
});

const data = {
  State: { Status: 'running', Pid: 42, Running: true, Paused: false },
  Config: { Env: ['A=1', 'B=2'], Labels: { x: 'y', a: 'b' }, Cmd: null },
  Names: ['web'],
  NetworkSettings: { Networks: { bridge: { IPAddress: '172.17.0.2' } }, Ports: { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }] } },
};

// [template, what Go's text/template (with docker's json/join/lower/upper) prints]
const cases = [
  ['{{.State.Status}}', 'running'],
  ['{{.State.Running}}', 'true'],
  ['{{json .Config.Env}}', '["A=1","B=2"]'],
  ['{{json .Config.Cmd}}', 'null'],
  ['{{range .Config.Env}}{{.}};{{end}}', 'A=1;B=2;'],
  ['{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}', 'a=b x=y '],
  ['{{range $i, $e := .Config.Env}}{{$i}}{{end}}', '01'],
  ['{{range .Missing}}x{{else}}empty{{end}}', 'empty'],
  ['{{index .Config.Labels "x"}}', 'y'],
  ['{{index .Config.Env 1}}', 'B=2'],
  ['{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', '172.17.0.2'],
  ['{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}', '8080'],
  ['{{if eq .State.Status "running"}}up{{else if eq .State.Status "exited"}}down{{else}}?{{end}}', 'up'],
  ['{{if eq .State.Status "x"}}1{{else if eq .State.Pid 42}}2{{else}}3{{end}}', '2'],
  ['{{if and .State.Running (not .State.Paused)}}yes{{end}}', 'yes'],
  ['{{if .Missing}}y{{else}}n{{end}}', 'n'],
  ['{{.Missing}}', '<no value>'],
  ['{{.Config.Labels}}', 'map[a:b x:y]'],
  ['{{.Config.Env}}', '[A=1 B=2]'],
  ['{{join .Config.Env ","}}', 'A=1,B=2'],
  ['{{.Names | json}}', '["web"]'],
  ['{{with .State}}{{.Pid}}{{end}}', '42'],
  ['a {{- " b " -}} c', 'a b c'],
  ['{{printf "%s-%d|%5s|%-3s|" .State.Status .State.Pid "r" "l"}}', 'running-42|    r|l  |'],
  ['{{len .Config.Env}} {{len .Config.Labels}}', '2 2'],
  ['{{$s := .State.Status}}{{$s}} {{$.State.Pid}}', 'running 42'],
  ['{{range .Config.Env}}{{$.State.Pid}}{{end}}', '4242'],
  ['{{lower "AB"}}{{upper "c"}}{{title "web app"}}', 'abCWeb App'],
  ['{{/* a comment */}}ok', 'ok'],
];
for (const [tpl, want] of cases) {
  test(`template ${tpl}`, t => { t.is(render(tpl, data), want); });
}

test('template errors are one line, exit 125, and name the template', t => {
  for (const tpl of ['{{.State', '{{if .X}}', '{{end}}', '{{nofn .X}}', '{{.A | .B}}', '{{"abc}}']) {
    const e = t.throws(() => render(tpl, data), undefined, tpl);
    t.notRegex(e.message, /\n/);
    t.is(e.exitCode, 125, tpl);
  }
});
