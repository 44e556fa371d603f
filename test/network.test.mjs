// Networking (issue 6) with real packets. The NETWORK RULE: nothing here touches the host's own
// network namespace. Each test makes a namespace that plays "the host" (tsrun runs inside it via
// `nsenter --net`, not `ip netns exec`, which would remount /sys) and one that plays "the outside
// world" on TEST-NET-2 (198.51.100.0/24), joined by a veth; both are deleted afterwards.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { newRoot, tempDir, ensureImage, describe, tsrunOnly, waitFor, sleep, spawnCmd, childEnv, TSRUN } from './helpers/index.mjs';

const t2 = tsrunOnly(test);

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

const hostView = () => ({ links: sh('ip', ['-o', 'link']).split('\n').filter(l => /tsrun|tsbr-|veth/.test(l)), rules: sh('iptables-save').split('\n').filter(l => /TSRUN/.test(l)) });
const before = hostView();
test.after.always('the real host namespace is untouched', t => {
  const after = hostView();
  t.deepEqual(after, before, 'a bridge, veth or TSRUN rule appeared in the host namespace');
});

/** A "host" and an "outside" namespace, a root with the test image, and `r` running tsrun in the host. */
async function netEnv(t) {
  const sfx = randomBytes(3).toString('hex');
  const host = `tsrun-t-h${sfx}`, out = `tsrun-t-o${sfx}`;
  sh('ip', ['netns', 'add', host]);
  sh('ip', ['netns', 'add', out]);
  const root = newRoot(t);
  const inNs = (ns, cmd, args, { env: extra, ...opts } = {}) => spawnCmd('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args], { ...opts, env: childEnv({ TSRUN_DEFAULT_NETWORK: 'bridge', ...(extra ?? {}) }) }).done;
  const r = (args, opts) => inNs(host, TSRUN, ['--root', root, ...args], opts);
  t.teardown(async () => {
    const ids = (await r(['ps', '-aq', '--no-trunc'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await r(['rm', '-f', ...ids]);
    const nets = (await r(['network', 'ls', '--format', '{{.Name}}'])).stdout.trim().split('\n').filter((n) => n && !['bridge', 'host', 'none'].includes(n));
    if (nets.length) await r(['network', 'rm', ...nets]);
    // resolvers this test's networks started, should `network rm` have failed
    for (const pid of readdirSync('/proc').filter(p => /^\d+$/.test(p))) {
      let cmd = '';
      try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
      if (cmd.includes('dns-serve') && cmd.includes(root)) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
    }
    spawnSync('ip', ['netns', 'del', host]);
    spawnSync('ip', ['netns', 'del', out]);
  });
  sh('ip', ['-n', host, 'link', 'add', `th${sfx}`, 'type', 'veth', 'peer', 'name', `to${sfx}`, 'netns', out]);
  sh('ip', ['-n', host, 'addr', 'add', '198.51.100.1/24', 'dev', `th${sfx}`]);
  sh('ip', ['-n', out, 'addr', 'add', '198.51.100.2/24', 'dev', `to${sfx}`]);
  for (const [ns, dev] of [[host, `th${sfx}`], [out, `to${sfx}`]]) {
    sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  const tarball = join(tempDir(t), 'rootfs.tar');
  execFileSync('tar', ['-C', ensureImage(), '-cf', tarball, '.']);
  const imp = await r(['import', tarball, 'test/bb:1']);
  t.is(imp.code, 0, describe(imp));
  const inHost = (cmd, args) => sh('nsenter', [`--net=/run/netns/${host}`, cmd, ...args]);
  return { host, out, root, r, inNs, inHost };
}

/** A TCP server in namespace ns that answers each connection with the client's address. */
function whoamiServer(t, env, ns, port) {
  const s = spawnCmd('nsenter', [`--net=/run/netns/${ns}`, process.execPath, '-e',
    `require('net').createServer(s => s.end(s.remoteAddress.replace('::ffff:', '') + '\\n')).listen(${port}, () => console.log('listening'))`], { timeout: 60_000 });
  t.teardown(() => { try { s.child.kill('SIGKILL'); } catch { /* gone */ } });
  return s.waitFor('listening', 20_000);
}

/** GET url from namespace ns with node (no curl dependency); resolves to the body or 'ERR ...'. */
async function get(env, ns, url) {
  const res = await env.inNs(ns, process.execPath, ['-e',
    `require('http').get(${JSON.stringify(url)}, { timeout: 3000, insecureHTTPParser: true }, r => { let b = ''; r.on('data', d => b += d); r.on('end', () => console.log(b.trim())); }).on('error', e => console.log('ERR ' + e.code)).on('timeout', function () { console.log('ERR timeout'); this.destroy(); })`]);
  return res.stdout.trim();
}

/** An A query over TCP (length-prefixed) from namespace ns: 'rcode=N ip ip..' or 'ERR ...'. */
async function dnsTcp(env, ns, server, name) {
  const res = await env.inNs(ns, process.execPath, ['-e', `
    const q = Buffer.concat([Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...${JSON.stringify(name)}.split('.').map(l => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
    const c = require('net').connect(53, ${JSON.stringify(server)}, () => { const l = Buffer.alloc(2); l.writeUInt16BE(q.length); c.write(Buffer.concat([l, q])); });
    let b = Buffer.alloc(0);
    c.on('data', d => {
      b = Buffer.concat([b, d]);
      if (b.length < 2 || b.length < 2 + b.readUInt16BE(0)) return;
      const r = b.subarray(2), n = r.readUInt16BE(6), ips = [];
      for (let i = 0; i < n; i++) { const o = r.length - 16 * (n - i); ips.push([...r.subarray(o + 12, o + 16)].join('.')); }
      console.log(['rcode=' + (r[3] & 15), ...ips].join(' '));
      c.end();
    });
    c.on('error', e => console.log('ERR ' + e.code));
    setTimeout(() => { console.log('ERR timeout'); process.exit(); }, 15_000).unref();`]);
  return res.stdout.trim();
}

/** The resolver processes of a root. */
const resolversOf = root => readdirSync('/proc').filter(p => /^\d+$/.test(p)).filter(p => {
  try { const c = readFileSync(`/proc/${p}/cmdline`, 'utf8'); return c.includes('dns-serve') && c.includes(root); } catch { return false; }
});

const HTTPD = ['sh', '-c', 'mkdir -p /www/cgi-bin; printf "#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho remote=\\$REMOTE_ADDR\\n" > /www/cgi-bin/r; chmod +x /www/cgi-bin/r; exec httpd -f -p 80 -h /www'];

const natRules = env => env.inHost('iptables-save', ['-t', 'nat']);
const links = env => env.inHost('ip', ['-o', 'link']);
/** The kernel deletes a stopped container's veth pair with its namespace, a moment after tsrun returns. */
async function vethsGone(t, env, re = /veth/) {
  try { await waitFor(() => !re.test(links(env)), { what: 'the veths to go', timeout: 20_000 }); } catch { /* asserted below */ }
  t.notRegex(links(env), re);
}

t2('bridge: eth0, default route, /etc files, and outbound NAT (the outside sees the host address)', async t => {
  const env = await netEnv(t);
  await whoamiServer(t, env, env.out, 9000);
  const res = await env.r(['run', '--rm', 'test/bb:1', 'sh', '-c', 'ip -o -4 addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf; echo ---; nc -w 3 198.51.100.2 9000']);
  t.is(res.code, 0, describe(res));
  t.regex(res.stdout, /eth0\s+inet 172\.17\.0\.2\/16/);
  t.regex(res.stdout, /default via 172\.17\.0\.1 dev eth0/);
  t.regex(res.stdout, /172\.17\.0\.2\t[0-9a-f]{12}\n/);
  t.notRegex(res.stdout, /nameserver 127\./);
  // the outside namespace has no route to 172.17/16: only MASQUERADE makes this answer arrive
  t.is(res.stdout.split('---\n')[1].trim(), '198.51.100.1');
  t.regex(links(env), /tsrun0/);
  await vethsGone(t, env);
  t.deepEqual(readdirSync(join(env.root, 'netns')), []);
  t.regex(natRules(env), /-A TSRUN-POSTROUTING -s 172\.17\.0\.0\/16 ! -o tsrun0 -j MASQUERADE/);
  t.is(env.inHost('cat', ['/proc/sys/net/ipv4/ip_forward']).trim(), '1');
});

t2('-p: DNAT from outside keeps the client address, localhost works, port/ps show it, conflicts refused, rules go with the container', async t => {
  const env = await netEnv(t);
  const run = await env.r(['run', '-d', '--name', 'web', '-p', '8080:80', '-p', '5353/udp', 'test/bb:1', ...HTTPD]);
  t.is(run.code, 0, describe(run));
  const id = run.stdout.trim();
  await waitFor(async () => (await get(env, env.out, 'http://198.51.100.1:8080/cgi-bin/r')).startsWith('remote='), { what: 'httpd through DNAT', timeout: 30_000 });
  // busybox httpd prints IPv4 clients as [::ffff:a.b.c.d]
  t.regex(await get(env, env.out, 'http://198.51.100.1:8080/cgi-bin/r'), /^remote=(\[::ffff:)?198\.51\.100\.2\]?$/, 'DNAT, not a proxy: the container sees the client');
  t.regex(await get(env, env.host, 'http://127.0.0.1:8080/cgi-bin/r'), /^remote=(\[::ffff:)?172\.17\.0\.1\]?$/, 'localhost:8080 from the host');
  t.regex(await get(env, env.host, 'http://198.51.100.1:8080/cgi-bin/r'), /^remote=/, 'the host\'s own address');
  // hairpin: the container itself through its published port
  const hp = await env.r(['exec', 'web', 'sh', '-c', 'printf "GET /cgi-bin/r HTTP/1.0\\r\\n\\r\\n" | nc -w 3 198.51.100.1 8080 | tail -1']);
  t.regex(hp.stdout, /^remote=/, describe(hp));
  const port = await env.r(['port', 'web']);
  t.regex(port.stdout, /^80\/tcp -> 0\.0\.0\.0:8080\n5353\/udp -> 0\.0\.0\.0:(\d+)\n$/, describe(port));
  const rnd = Number(/5353\/udp -> 0\.0\.0\.0:(\d+)/.exec(port.stdout)?.[1]);
  t.true(rnd >= 1024, `random port ${rnd}`);
  t.is((await env.r(['port', 'web', '80'])).stdout, '0.0.0.0:8080\n');
  const ps = await env.r(['ps']);
  t.regex(ps.stdout, new RegExp(`0\\.0\\.0\\.0:8080->80/tcp, 0\\.0\\.0\\.0:${rnd}->5353/udp\\s+web\\n`));
  const clash = await env.r(['run', '-d', '-p', '8080:80', 'test/bb:1', 'sleep', '5']);
  t.not(clash.code, 0);
  t.regex(clash.stderr, /Bind for 0\.0\.0\.0:8080 failed: port is already allocated/);
  const insp = JSON.parse((await env.r(['inspect', 'web'])).stdout)[0];
  t.is(insp.NetworkSettings.IPAddress, '172.17.0.2');
  t.deepEqual(insp.NetworkSettings.Ports['80/tcp'], [{ HostIp: '0.0.0.0', HostPort: '8080' }]);
  t.is(insp.HostConfig.NetworkMode, 'bridge');
  t.regex(natRules(env), /--dport 8080 -j DNAT --to-destination 172\.17\.0\.2:80/);
  // stop: the rules go, the port is free again; start brings them back
  t.is((await env.r(['stop', '-t', '1', 'web'])).code, 0);
  t.notRegex(natRules(env), /-j DNAT/);
  await vethsGone(t, env);
  t.is((await env.r(['port', 'web'])).stdout, '');
  t.is((await env.r(['start', 'web'])).code, 0);
  await waitFor(async () => (await get(env, env.out, 'http://198.51.100.1:8080/cgi-bin/r')).includes('198.51.100.2'), { what: 'httpd after start' });
  t.is((await env.r(['rm', '-f', 'web'])).code, 0);
  t.notRegex(natRules(env), /-j DNAT|172\.17\.0\.\d+\/32/);
  t.notRegex(env.inHost('iptables-save', ['-t', 'filter']), /172\.17\.0\./);
  await vethsGone(t, env);
  t.false(existsSync(join(env.root, 'netns', id)));
  t.deepEqual(readdirSync(join(env.root, 'networks', 'endpoints')).filter(f => !f.startsWith('.')), []);
});

t2('user networks: names and aliases resolve through the embedded DNS, networks are isolated, ls/inspect/rm', async t => {
  const env = await netEnv(t);
  const c1 = await env.r(['network', 'create', 'n1']);
  t.is(c1.code, 0, describe(c1));
  t.is((await env.r(['network', 'create', '--subnet', '10.99.0.0/24', '--gateway', '10.99.0.254', 'n2'])).code, 0);
  t.not((await env.r(['network', 'create', 'n1'])).code, 0, 'duplicate name refused');
  const ls = await env.r(['network', 'ls']);
  t.regex(ls.stdout, /NETWORK ID\s+NAME\s+DRIVER\s+SCOPE\n/);
  for (const n of ['bridge', 'n1', 'n2', 'host', 'none']) t.regex(ls.stdout, new RegExp(`\\s${n}\\s`));
  t.is((await env.r(['run', '-d', '--name', 'db', '--network', 'n1', '--network-alias', 'database', 'test/bb:1', 'sleep', '60'])).code, 0);
  t.is((await env.r(['run', '-d', '--name', 'other', '--network', 'n2', '--ip', '10.99.0.50', 'test/bb:1', 'sleep', '60'])).code, 0);
  const q = await env.r(['run', '--rm', '--network', 'n1', 'test/bb:1', 'sh', '-c', 'nslookup db; nslookup database; ping -c1 -W2 db']);
  t.is(q.code, 0, describe(q));
  t.is((q.stdout.match(/Address: 172\.18\.0\.2/g) ?? []).length, 2, q.stdout);
  t.regex(q.stdout, /1 packets received/);
  // one resolver for the root, on both networks' gateways, over UDP and TCP
  t.is(resolversOf(env.root).length, 1, 'one resolver process for all the networks of a root');
  const tcp = env.inHost('ss', ['-tlnH']);
  t.regex(tcp, /172\.18\.0\.1:53\b/);
  t.regex(tcp, /10\.99\.0\.254:53\b/);
  t.is(await dnsTcp(env, env.host, '172.18.0.1', 'database'), 'rcode=0 172.18.0.2', 'a name answered over TCP');
  const iso = await env.r(['run', '--rm', '--network', 'n1', 'test/bb:1', 'ping', '-c1', '-W1', '10.99.0.50']);
  t.not(iso.code, 0, `n1 reached n2:\n${describe(iso)}`);
  const same = await env.r(['run', '--rm', '--network', 'n2', 'test/bb:1', 'ping', '-c1', '-W2', '10.99.0.50']);
  t.is(same.code, 0, describe(same));
  const nx = await env.r(['run', '--rm', '--network', 'n2', 'test/bb:1', 'nslookup', 'db']);
  t.not(nx.code, 0, 'n2 does not know the names of n1');
  // the default bridge has no DNS; --link gives an /etc/hosts entry there
  t.is((await env.r(['run', '-d', '--name', 'plain', 'test/bb:1', 'sleep', '60'])).code, 0);
  const lk = await env.r(['run', '--rm', '--link', 'plain:buddy', 'test/bb:1', 'sh', '-c', 'grep buddy /etc/hosts && ping -c1 -W2 buddy && ! grep -q "nameserver 172.17.0.1" /etc/resolv.conf']);
  t.is(lk.code, 0, describe(lk));
  const insp = JSON.parse((await env.r(['network', 'inspect', 'n1'])).stdout)[0];
  t.is(insp.Name, 'n1');
  t.is(insp.IPAM.Config[0].Subnet, '172.18.0.0/16');
  t.deepEqual(Object.values(insp.Containers).map(c => [c.Name, c.IPv4Address]), [['db', '172.18.0.2/16']]);
  t.is(JSON.parse((await env.r(['network', 'inspect', 'n2'])).stdout)[0].IPAM.Config[0].Gateway, '10.99.0.254');
  const busy = await env.r(['network', 'rm', 'n1']);
  t.not(busy.code, 0);
  t.regex(busy.stderr, /active endpoints/);
  // connect: a running container gets eth1 on n1 and resolves n1's names
  t.is((await env.r(['network', 'connect', 'n1', 'other'])).code, 0);
  const ex = await env.r(['exec', 'other', 'sh', '-c', 'ip -o -4 addr show eth1 && ping -c1 -W2 db']);
  t.is(ex.code, 0, describe(ex));
  t.is((await env.r(['network', 'disconnect', 'n1', 'other'])).code, 0);
  t.not((await env.r(['exec', 'other', 'ip', 'addr', 'show', 'eth1'])).code, 0);
  t.is((await env.r(['rm', '-f', 'db', 'other', 'plain'])).code, 0);
  const rm = await env.r(['network', 'rm', 'n1', 'n2']);
  t.is(rm.code, 0, describe(rm));
  await vethsGone(t, env, /tsbr-|veth/);
  t.notRegex(env.inHost('iptables-save', []), /tsbr-/);
  t.notRegex(env.inHost('ss', ['-ulnp']), /:53\b/, 'the resolver went with the networks');
  t.notRegex(env.inHost('ss', ['-tlnp']), /:53\b/);
  t.deepEqual(resolversOf(env.root), [], 'and exited with the last one');
});

t2('--network none, host and container:NAME', async t => {
  const env = await netEnv(t);
  const none = await env.r(['run', '--rm', '--network', 'none', 'test/bb:1', 'sh', '-c', 'ip -o link; ping -c1 -W1 127.0.0.1 >/dev/null && echo lo-works']);
  t.is(none.code, 0, describe(none));
  const [links, ...rest] = none.stdout.trim().split('\n').reduce((a, l) => (l === 'lo-works' ? [a[0], l] : [[...a[0], l]]), [[]]);
  t.deepEqual(links.map(l => l.split(':')[1].trim()), ['lo']);
  t.regex(links[0], /<LOOPBACK,UP/, 'lo is up, as with docker and podman');
  t.deepEqual(rest, ['lo-works']);
  const host = await env.r(['run', '--rm', '--network', 'host', 'test/bb:1', 'ip', '-o', 'addr']);
  t.regex(host.stdout, /198\.51\.100\.1\/24/, 'the host namespace\'s address');
  t.is((await env.r(['run', '-d', '--name', 'srv', 'test/bb:1', 'sh', '-c', 'mkdir /w; echo shared > /w/index.html; exec httpd -f -p 127.0.0.1:7000 -h /w'])).code, 0);
  await sleep(300);
  const side = await env.r(['run', '--rm', '--network', 'container:srv', 'test/bb:1', 'sh', '-c', 'wget -qO- http://127.0.0.1:7000/; ip -o -4 addr show eth0']);
  t.is(side.code, 0, describe(side));
  t.regex(side.stdout, /shared\n/);
  t.regex(side.stdout, /inet 172\.17\.0\.2\//);
  const clash = await env.r(['run', '--rm', '--network', 'container:srv', '-p', '80:80', 'test/bb:1', 'true']);
  t.not(clash.code, 0);
  t.regex(clash.stderr, /conflicting options/);
});

t2('--dns, --add-host, --mac-address, --ip; ping works (NET_RAW)', async t => {
  const env = await netEnv(t);
  t.is((await env.r(['network', 'create', '--subnet', '10.77.0.0/24', 'n3'])).code, 0);
  const res = await env.r(['run', '--rm', '--network', 'n3', '--ip', '10.77.0.9', '--mac-address', '02:aa:bb:cc:dd:ee', '--dns', '192.0.2.53', '--add-host', 'foo:192.0.2.7',
    'test/bb:1', 'sh', '-c', 'ip -o -4 addr show eth0; ip link show eth0; cat /etc/resolv.conf /etc/hosts; ping -c1 -W2 10.77.0.1']);
  t.is(res.code, 0, describe(res));
  t.regex(res.stdout, /inet 10\.77\.0\.9\/24/);
  t.regex(res.stdout, /link\/ether 02:aa:bb:cc:dd:ee/);
  // on a user network resolv.conf names the embedded resolver only (Docker's 127.0.0.11); --dns is its upstream
  t.regex(res.stdout, /^nameserver 10\.77\.0\.1\n/m);
  t.notRegex(res.stdout, /nameserver 192\.0\.2\.53/);
  t.regex(res.stdout, /192\.0\.2\.7\tfoo/);
  t.regex(res.stdout, /1 packets received/);
  const dflt = await env.r(['run', '--rm', '--dns', '192.0.2.1', 'test/bb:1', 'cat', '/etc/resolv.conf']);
  t.regex(dflt.stdout, /^nameserver 192\.0\.2\.1\n/);
  // host-gateway is the default bridge's gateway, also with --network none
  for (const mode of ['bridge', 'none']) {
    const hg = await env.r(['run', '--rm', '--network', mode, '--add-host', 'host.docker.internal:host-gateway', 'test/bb:1', 'grep', 'host.docker.internal', '/etc/hosts']);
    t.is(hg.stdout, '172.17.0.1\thost.docker.internal\n', `${mode}: ${describe(hg)}`);
  }
  // ... the one TSRUN_BRIDGE_SUBNET gives, not a fixed 172.17.0.1
  const other = newRoot(t);
  const tarball = join(tempDir(t), 'rootfs.tar');
  execFileSync('tar', ['-C', ensureImage(), '-cf', tarball, '.']);
  const r2 = args => env.inNs(env.host, TSRUN, ['--root', other, ...args], { env: { TSRUN_BRIDGE_SUBNET: '10.66.0.0/24' } });
  t.is((await r2(['import', tarball, 'test/bb:1'])).code, 0);
  const hg2 = await r2(['run', '--rm', '--network', 'none', '--add-host', 'gw:host-gateway', 'test/bb:1', 'grep', 'gw', '/etc/hosts']);
  t.is(hg2.stdout, '10.66.0.1\tgw\n', describe(hg2));
  const bad = await env.r(['run', '--rm', '--ip', '172.17.0.9', 'test/bb:1', 'true']);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /user defined networks only/);
});

t2('IPAM: 20 concurrent runs get 20 different addresses, all freed afterwards', async t => {
  const env = await netEnv(t);
  const runs = await Promise.all(Array.from({ length: 20 }, () => env.r(['run', '--rm', 'test/bb:1', 'sh', '-c', 'ip -o -4 addr show eth0; sleep 1'], { timeout: 120_000 })));
  for (const r of runs) t.is(r.code, 0, describe(r));
  const ips = runs.map(r => /inet (172\.17\.\d+\.\d+)/.exec(r.stdout)?.[1]);
  t.is(new Set(ips).size, 20, ips.join(' '));
  await vethsGone(t, env);
  t.deepEqual(readdirSync(join(env.root, 'netns')), []);
  t.deepEqual(readdirSync(join(env.root, 'networks', 'endpoints')).filter(f => !f.startsWith('.')), []);
});

t2('a killed tsrun: the next command sweeps its veth, namespace and rules', async t => {
  const env = await netEnv(t);
  const fg = spawnCmd('nsenter', [`--net=/run/netns/${env.host}`, TSRUN, '--root', env.root, 'run', '--name', 'fg', '-p', '9090:80', 'test/bb:1', 'sh', '-c', 'echo up; sleep 60'],
    { env: childEnv({ TSRUN_DEFAULT_NETWORK: 'bridge' }), timeout: 60_000 });
  await fg.waitFor('up', 30_000);
  t.regex(natRules(env), /--dport 9090/);
  fg.child.kill('SIGKILL');
  await fg.done;
  const ps = await env.r(['ps', '-a']);
  t.is(ps.code, 0, describe(ps));
  t.notRegex(natRules(env), /--dport 9090/);
  t.notRegex(links(env), /veth/, 'deleted at once: the container may still run');
  t.deepEqual(readdirSync(join(env.root, 'netns')), []);
  // a crash between making the bridge and writing its rules (simulated: rules and marker gone)
  env.inHost('iptables', ['-t', 'nat', '-F', 'TSRUN-POSTROUTING']);
  for (const f of readdirSync(join(env.root, 'networks'))) if (f.startsWith('.rules-')) rmSync(join(env.root, 'networks', f));
  const again = await env.r(['run', '--rm', 'test/bb:1', 'true']);
  t.is(again.code, 0, describe(again));
  t.regex(natRules(env), /-A TSRUN-POSTROUTING -s 172\.17\.0\.0\/16 ! -o tsrun0 -j MASQUERADE/, 'rewritten by the next start');
});

t2('a detached container keeps its address and ports across restarts, and releases them when it stops for good', async t => {
  const env = await netEnv(t);
  // the second of its three runs lasts 4 s: the window in which the rule must still be there
  const run = await env.r(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', '-p', '7071:80', 'test/bb:1', 'sh', '-c',
    'n=$(cat /n 2>/dev/null || echo 0); echo $((n+1)) > /n; ip -o -4 addr show eth0; [ "$n" = 1 ] && sleep 4; sleep 0.3; exit 3']);
  t.is(run.code, 0, describe(run));
  await waitFor(async () => JSON.parse((await env.r(['inspect', 'flaky'])).stdout)[0].RestartCount >= 1, { what: 'a restart' });
  t.regex(natRules(env), /--dport 7071 -j DNAT --to-destination 172\.17\.0\.2:80/, 'kept while the supervisor restarts it');
  // no tsrun command in between: the supervisor releases the attachment after the last exit
  await waitFor(() => !/--dport 7071/.test(natRules(env)), { what: 'the rule to go', timeout: 30_000 });
  await vethsGone(t, env);
  t.deepEqual(readdirSync(join(env.root, 'netns')), []);
  const logs = await env.r(['logs', 'flaky']);
  t.is((logs.stdout.match(/inet 172\.17\.0\.2\//g) ?? []).length, 3, logs.stdout);
});

t2('one root per network namespace: a second root is refused before it rewrites the first one\'s chains', async t => {
  const env = await netEnv(t);
  const web = await env.r(['run', '-d', '--name', 'web', '-p', '8080:80', 'test/bb:1', ...HTTPD]);
  t.is(web.code, 0, describe(web));
  const rules = () => natRules(env).split('\n').filter(l => l.startsWith('-A ')).join('\n');
  const before = rules();
  t.true(before.includes(`-A TSRUN-POSTROUTING -m comment --comment "tsrun-root=${env.root}"`), before);
  const root2 = newRoot(t);
  const r2 = args => env.inNs(env.host, TSRUN, ['--root', root2, ...args]);
  const tarball = join(tempDir(t), 'rootfs.tar');
  execFileSync('tar', ['-C', ensureImage(), '-cf', tarball, '.']);
  t.is((await r2(['import', tarball, 'test/bb:1'])).code, 0);
  const res = await r2(['run', '--rm', '-p', '9090:80', 'test/bb:1', 'true']);
  t.is(res.code, 125, describe(res));
  t.regex(res.stderr, /^tsrun: network: the TSRUN iptables chains of this network namespace hold the rules of the tsrun root \S+, and writing \S+ would drop them: use --root \S+, --network none, or another network namespace\n$/);
  t.is(rules(), before, 'the first root\'s rules are untouched');
  await waitFor(async () => (await get(env, env.out, 'http://198.51.100.1:8080/cgi-bin/r')).startsWith('remote='), { what: 'the first root\'s published port', timeout: 30_000 });
  t.regex(await get(env, env.out, 'http://198.51.100.1:8080/cgi-bin/r'), /^remote=(\[::ffff:)?198\.51\.100\.2\]?$/, 'and its published port still answers');
  t.deepEqual(readdirSync(join(root2, 'containers')).filter(n => !n.startsWith('.')), [], 'the refused container is gone');
  t.deepEqual(existsSync(join(root2, 'netns')) ? readdirSync(join(root2, 'netns')) : [], [], 'and its network namespace');
  t.notRegex(env.inHost('ip', ['-o', 'link']), new RegExp(`veth.*master tsrun0.*\n.*veth.*master tsrun0`), 'one veth on the bridge: web\'s');
  t.is((await r2(['run', '--rm', '--network', 'none', 'test/bb:1', 'true'])).code, 0, '--network none is not affected');
});

t2('iptables backends: a namespace whose rules are in iptables-legacy gets tsrun\'s there too', async t => {
  const env = await netEnv(t);
  // a "host" firewall kept with iptables-legacy
  env.inHost('iptables-legacy', ['-A', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT']);
  const run = await env.r(['run', '-d', '--name', 'web', '-p', '8080:80', 'test/bb:1', ...HTTPD]);
  t.is(run.code, 0, describe(run));
  const legacy = env.inHost('iptables-legacy-save', []);
  t.regex(legacy, /--dport 8080 -j DNAT --to-destination 172\.17\.0\.2:80/);
  t.regex(legacy, /-A TSRUN-POSTROUTING -s 172\.17\.0\.0\/16 ! -o tsrun0 -j MASQUERADE/);
  t.notRegex(env.inHost('iptables-nft-save', []), /TSRUN/);
  await waitFor(async () => /198\.51\.100\.2/.test(await get(env, env.out, 'http://198.51.100.1:8080/cgi-bin/r')), { what: 'httpd through legacy DNAT' });
  t.is((await env.r(['rm', '-f', 'web'])).code, 0);
  t.notRegex(env.inHost('iptables-legacy-save', []), /-j DNAT/);
  // TSRUN_IPTABLES overrides the choice
  const nft = await env.r(['run', '--rm', '-p', '8081:80', 'test/bb:1', 'sh', '-c', 'true'], { env: { TSRUN_IPTABLES: 'nft' } });
  t.is(nft.code, 0, describe(nft));
  t.regex(env.inHost('iptables-nft-save', []), /TSRUN/);
});

t2('the default bridge takes TSRUN_BRIDGE_SUBNET, or the next free subnet when 172.17.0.0/16 is in use', async t => {
  const env = await netEnv(t);
  // the "host" already routes 172.17/16 elsewhere (to the outside namespace)
  env.inHost('ip', ['route', 'add', '172.17.0.0/16', 'via', '198.51.100.2']);
  const res = await env.r(['run', '--rm', 'test/bb:1', 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
  t.is(res.code, 0, describe(res));
  t.regex(res.stdout, /inet 172\.18\.0\.\d+\/16/);
  t.regex(env.inHost('ip', ['-o', '-4', 'addr', 'show', 'tsrun0']), /inet 172\.18\.0\.1\/16/);
  const other = newRoot(t);
  const cfg = await env.inNs(env.host, TSRUN, ['--root', other, 'network', 'inspect', '-f', '{{json .IPAM.Config}}', 'bridge'], { env: { TSRUN_BRIDGE_SUBNET: '10.123.0.0/24' } });
  t.is(cfg.stdout.trim(), '[{"Subnet":"10.123.0.0/24","Gateway":"10.123.0.1"}]', describe(cfg));
});

t2('a tsrun0 left behind by a deleted root is adopted with its address; one without an address gets the gateway', async t => {
  const env = await netEnv(t);
  await whoamiServer(t, env, env.out, 9000);
  const tarball = join(tempDir(t), 'rootfs.tar');
  execFileSync('tar', ['-C', ensureImage(), '-cf', tarball, '.']);
  const other = async (root) => {
    const r = args => env.inNs(env.host, TSRUN, ['--root', root, ...args]);
    t.is((await r(['import', tarball, 'test/bb:1'])).code, 0);
    return r;
  };
  const outbound = ['run', '--rm', 'test/bb:1', 'sh', '-c', 'ip -o -4 addr show eth0; nc -w 3 198.51.100.2 9000'];
  // a root makes the bridge, then its state is deleted without tsrun (rm -rf)
  const gone = newRoot(t);
  const first = await (await other(gone))(outbound);
  t.is(first.code, 0, describe(first));
  rmSync(gone, { recursive: true, force: true });
  t.regex(env.inHost('ip', ['-o', '-4', 'addr', 'show', 'tsrun0']), /inet 172\.17\.0\.1\/16/);
  // the next root takes the bridge with its subnet (it used to pick 172.18/16 and leave tsrun0 at .17)
  const res = await env.r(outbound);
  t.is(res.code, 0, describe(res));
  t.regex(res.stdout, /inet 172\.17\.0\.2\/16/);
  t.is(res.stdout.trim().split('\n').pop(), '198.51.100.1', 'outbound NAT through the adopted bridge');
  t.is(JSON.parse((await env.r(['network', 'inspect', 'bridge'])).stdout)[0].IPAM.Config[0].Gateway, '172.17.0.1');
  // a bare tsrun0 (no address, down) left by something else: the gateway is added, the link set up
  const bare = newRoot(t);
  rmSync(env.root, { recursive: true, force: true });
  env.inHost('ip', ['link', 'del', 'tsrun0']);
  env.inHost('ip', ['link', 'add', 'tsrun0', 'type', 'bridge']);
  const again = await (await other(bare))(outbound);
  t.is(again.code, 0, describe(again));
  t.is(again.stdout.trim().split('\n').pop(), '198.51.100.1');
  t.regex(env.inHost('ip', ['-o', '-4', 'addr', 'show', 'tsrun0']), /inet 172\.17\.0\.1\/16/);
});

t2('MTU: network create -o com.docker.network.driver.mtu=N sets the bridge, both veth ends and eth0; TSRUN_MTU and daemon.json set the default; bad values refused', async t => {
  const env = await netEnv(t);
  const bad = await env.r(['network', 'create', '-o', 'com.docker.network.driver.mtu=40', 'nbad']);
  t.is(bad.code, 125, describe(bad));
  t.regex(bad.stderr, /invalid MTU number: 40/);
  t.is((await env.r(['network', 'ls', '-q', '--filter', 'name=nbad'])).stdout.trim(), '', 'a refused network leaves no record');
  t.is((await env.r(['network', 'create', '-o', 'com.docker.network.driver.mtu=9000', 'jumbo'])).code, 0);
  const insp = await env.r(['network', 'inspect', '-f', '{{index .Options "com.docker.network.driver.mtu"}}', 'jumbo']);
  t.is(insp.stdout.trim(), '9000', describe(insp));
  const d = await env.r(['run', '-d', '--name', 'j1', '--network', 'jumbo', 'test/bb:1', 'sleep', '60']);
  t.is(d.code, 0, describe(d));
  // eth0 of both containers has the MTU; an 8000-byte ping between them gets an answer
  const res = await env.r(['run', '--rm', '--network', 'jumbo', 'test/bb:1', 'sh', '-c', 'cat /sys/class/net/eth0/mtu; ping -c 1 -W 3 -s 8000 j1 >/dev/null && echo big-ping-ok']);
  t.is(res.code, 0, describe(res));
  t.deepEqual(res.stdout.trim().split('\n'), ['9000', 'big-ping-ok']);
  const id = (await env.r(['network', 'inspect', '-f', '{{.Id}}', 'jumbo'])).stdout.trim();
  t.regex(env.inHost('ip', ['-o', 'link', 'show', `tsbr-${id.slice(0, 10)}`]), /mtu 9000/);
  const ports = env.inHost('ip', ['-o', 'link', 'show', 'master', `tsbr-${id.slice(0, 10)}`]).trim().split('\n');
  t.is(ports.length, 1);
  t.regex(ports[0], /mtu 9000/, 'the host end of the veth');
  t.is((await env.r(['exec', 'j1', 'cat', '/sys/class/net/eth0/mtu'])).stdout.trim(), '9000');
  // the default bridge stays at 1500 unless told: TSRUN_MTU (or "mtu" in <root>/daemon.json) when it is made
  const plain = await env.r(['run', '--rm', 'test/bb:1', 'cat', '/sys/class/net/eth0/mtu']);
  t.is(plain.stdout.trim(), '1500', describe(plain));
  const other = newRoot(t);
  const viaEnv = await env.inNs(env.host, TSRUN, ['--root', other, 'network', 'inspect', '-f', '{{json .Options}}', 'bridge'], { env: { TSRUN_MTU: '65000' } });
  t.regex(viaEnv.stdout, /"com.docker.network.driver.mtu":"65000"/, describe(viaEnv));
  // a network is made, so in a namespace of its own: one root's chains per namespace (the "outside" one has none)
  const third = newRoot(t);
  (await import('node:fs')).writeFileSync(join(third, 'daemon.json'), '{"mtu": 1400}\n');
  const viaFile = await env.inNs(env.out, TSRUN, ['--root', third, 'network', 'create', 'n1400']);
  t.is(viaFile.code, 0, describe(viaFile));
  t.is((await env.inNs(env.out, TSRUN, ['--root', third, 'network', 'inspect', '-f', '{{index .Options "com.docker.network.driver.mtu"}}', 'n1400'])).stdout.trim(), '1400');
  await env.inNs(env.out, TSRUN, ['--root', third, 'network', 'rm', 'n1400']);
});

t2('stats: NET I/O counts the bytes of the container\'s interfaces (not lo)', async t => {
  const env = await netEnv(t);
  await whoamiServer(t, env, env.out, 9000);
  const d = await env.r(['run', '-d', '--name', 's1', 'test/bb:1', 'sh', '-c', 'nc -w 3 198.51.100.2 9000; head -c 100000 /dev/zero | nc -w 1 127.0.0.1 1 ; exec sleep 60']);
  t.is(d.code, 0, describe(d));
  const none = await env.r(['run', '-d', '--name', 's2', '--network', 'none', 'test/bb:1', 'sleep', '60']);
  t.is(none.code, 0, describe(none));
  await sleep(1500);
  const st = await env.r(['stats', '--no-stream', '--format', '{{.Name}} {{.NetIO}}', 's1', 's2']);
  t.is(st.code, 0, describe(st));
  const [l1, l2] = st.stdout.trim().split('\n');
  t.regex(l1, /^s1 \d+(\.\d+)?k?B \/ \d+(\.\d+)?k?B$/, st.stdout);
  t.notRegex(l1, / 0B \/ 0B$/, 'the answer from the outside was counted');
  t.is(l2, 's2 0B / 0B', 'lo (the only interface of --network none) is not counted');
});

t2('rename: a running container answers to its new name on its user network, not the old one', async t => {
  const env = await netEnv(t);
  t.is((await env.r(['network', 'create', 'nr'])).code, 0);
  t.is((await env.r(['run', '-d', '--name', 'before', '--network', 'nr', 'test/bb:1', 'sleep', '60'])).code, 0);
  const rn = await env.r(['rename', 'before', 'after']);
  t.is(rn.code, 0, describe(rn));
  await sleep(300); // the resolver reloads the attachments when their directory changes
  const q = await env.r(['run', '--rm', '--network', 'nr', 'test/bb:1', 'sh', '-c', 'nslookup after >/dev/null && echo new-ok; nslookup before >/dev/null || echo old-gone']);
  t.is(q.stdout.trim(), 'new-ok\nold-gone', describe(q));
});

t2('a killed resolver is started again by the next container on its network (a zombie counts as gone)', async t => {
  const env = await netEnv(t);
  t.is((await env.r(['network', 'create', 'nk'])).code, 0);
  t.is((await env.r(['run', '-d', '--name', 'peer', '--network', 'nk', 'test/bb:1', 'sleep', '60'])).code, 0);
  const [pid] = resolversOf(env.root);
  t.truthy(pid, 'a resolver runs');
  process.kill(Number(pid), 'SIGKILL');
  // not our child: whoever reaps orphans may leave it a zombie a while, with its pid and start time
  await waitFor(() => { try { return /^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return true; } }, { what: 'the resolver to die' });
  const q = await env.r(['run', '--rm', '--network', 'nk', 'test/bb:1', 'nslookup', 'peer']);
  t.is(q.code, 0, describe(q));
  t.regex(q.stdout, /Name:\s+peer\nAddress: 172\.\d+\.0\.2/);
  t.is(resolversOf(env.root).length, 1);
});

t2('network events: create, connect and disconnect (run, network connect/disconnect), destroy; --filter network=', async t => {
  const env = await netEnv(t);
  t.is((await env.r(['network', 'create', 'nev'])).code, 0);
  const run = await env.r(['run', '-d', '--name', 'evc', '--network', 'nev', 'test/bb:1', 'sleep', '60']);
  t.is(run.code, 0, describe(run));
  const id = run.stdout.trim();
  t.is((await env.r(['network', 'connect', 'bridge', 'evc'])).code, 0);
  t.is((await env.r(['network', 'disconnect', 'bridge', 'evc'])).code, 0);
  t.is((await env.r(['rm', '-f', 'evc'])).code, 0);
  t.is((await env.r(['network', 'rm', 'nev'])).code, 0);
  const fmt = ['--format', '{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.container}} {{.Actor.Attributes.type}}'];
  const all = await env.r(['events', '--since', '10m', '--until', '0s', '--filter', 'type=network', ...fmt]);
  t.is(all.code, 0, describe(all));
  t.deepEqual(all.stdout.trim().split('\n'), [
    'create nev <no value> bridge', `connect nev ${id} bridge`, `connect bridge ${id} bridge`, `disconnect bridge ${id} bridge`,
    `disconnect nev ${id} bridge`, 'destroy nev <no value> bridge',
  ]);
  const one = await env.r(['events', '--since', '10m', '--until', '0s', '--filter', 'network=nev', '--format', '{{.Action}}']);
  t.is(one.stdout, 'create\nconnect\ndisconnect\ndestroy\n');
});

t2('network prune: keeps the networks containers name (even stopped ones), removes the rest; label filter; asks unless -f', async t => {
  const env = await netEnv(t);
  for (const n of ['np-used', 'np-free']) t.is((await env.r(['network', 'create', n])).code, 0);
  t.is((await env.r(['network', 'create', '--label', 'keep=yes', 'np-labelled'])).code, 0);
  t.is((await env.r(['create', '--name', 'stopped', '--network', 'np-used', 'test/bb:1', 'true'])).code, 0);
  const no = await env.r(['network', 'prune']);
  t.is(no.code, 1, 'no answer (EOF) is a no');
  t.regex(no.stdout, /^WARNING! This will remove all custom networks not used by at least one container\.\n/);
  const pr = await env.r(['network', 'prune', '-f', '--filter', 'label!=keep=yes']);
  t.is(pr.code, 0, describe(pr));
  t.is(pr.stdout, 'Deleted Networks:\nnp-free\n\n');
  const start = await env.r(['start', '-a', 'stopped']);
  t.is(start.code, 0, `the stopped container still starts on its network: ${describe(start)}`);
  t.is((await env.r(['rm', 'stopped'])).code, 0);
  const rest = await env.r(['network', 'prune', '-f']);
  t.is(rest.stdout, 'Deleted Networks:\nnp-used\nnp-labelled\n\n');
  t.notRegex(env.inHost('ip', ['-o', 'link']), /tsbr-/);
});

t2('--dns on a user network: the embedded resolver forwards the names it does not know to that server', async t => {
  const env = await netEnv(t);
  // a DNS server in the outside world that answers every A query with 192.0.2.99
  const srv = spawnCmd('nsenter', [`--net=/run/netns/${env.out}`, process.execPath, '-e', `
    const s = require('dgram').createSocket('udp4');
    s.on('message', (q, r) => {
      let o = 12; while (q[o]) o += q[o] + 1; o += 5;
      const h = Buffer.from(q.subarray(0, o)); h[2] = 0x81; h[3] = 0x80; h.writeUInt16BE(1, 6);
      const rr = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 99]);
      s.send(Buffer.concat([h, rr]), r.port, r.address);
    });
    s.bind(53, '198.51.100.2', () => console.log('listening'));`], { timeout: 60_000 });
  t.teardown(() => { try { srv.child.kill('SIGKILL'); } catch { /* gone */ } });
  await srv.waitFor('listening', 20_000);
  t.is((await env.r(['network', 'create', 'nd'])).code, 0);
  t.is((await env.r(['run', '-d', '--name', 'peer', '--network', 'nd', 'test/bb:1', 'sleep', '60'])).code, 0);
  const q = await env.r(['run', '--rm', '--network', 'nd', '--dns', '198.51.100.2', 'test/bb:1', 'sh', '-c', 'nslookup somewhere.example; nslookup peer']);
  t.is(q.code, 0, describe(q));
  t.regex(q.stdout, /Name:\s+somewhere\.example\nAddress: 192\.0\.2\.99/, 'forwarded to the --dns server');
  t.regex(q.stdout, /Name:\s+peer\nAddress: 172\.\d+\.0\.2/, 'container names still answered by the embedded resolver');
});

t2('--internal network: no default route, nothing in or out, the containers on it still talk', async t => {
  const env = await netEnv(t);
  await whoamiServer(t, env, env.out, 9000);
  t.is((await env.r(['network', 'create', '--internal', 'ni'])).code, 0);
  t.is((await env.r(['run', '-d', '--name', 'i1', '--network', 'ni', 'test/bb:1', 'sleep', '60'])).code, 0);
  const res = await env.r(['run', '--rm', '--network', 'ni', 'test/bb:1', 'sh', '-c', 'ip route; echo ---; ping -c1 -W2 i1 >/dev/null && echo peer-ok; nc -w 2 198.51.100.2 9000 || echo out-blocked']);
  t.is(res.code, 0, describe(res));
  t.notRegex(res.stdout, /^default/m, 'no default route on an internal network');
  t.regex(res.stdout, /peer-ok\nout-blocked/);
  const insp = await env.r(['network', 'inspect', '-f', '{{.Internal}}', 'ni']);
  t.is(insp.stdout.trim(), 'true');
});
