// Operations: sealmesh(1) against every command's --help, `make install`
// with DESTDIR/PREFIX, the systemd unit under `systemd-analyze verify`, the
// installed binary run from the example config, --config FILE, and startup
// errors that name the file or address and the OS error.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BUILD, SEALMESH, startMock, startNode, stopAll, tmpdir, waitFor } from './lib.mjs';

after(stopAll);

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = (bin, args, opts = {}) => spawnSync(bin, args, { encoding: 'utf8', timeout: 20000, ...opts });
const have = (cmd) => run('sh', ['-c', `command -v ${cmd}`]).status === 0;
const lastLine = (s) => s.trim().split('\n').filter((l) => l.startsWith('sealmesh')).pop() ?? '';

// --- sealmesh(1) vs --help ----------------------------------------------------

const FLAG_RE = /--[a-z][a-z0-9-]*[a-z0-9]/g;
const COMMANDS = [[], ['serve'], ['client'], ['status'], ['token'], ['attest'], ['keygen'], ['posture']];

function helpFlags(bin = SEALMESH) {
  const flags = new Set();
  for (const c of COMMANDS) {
    const r = run(bin, [...c, '--help']);
    assert.equal(r.status, 0, `${c.join(' ')} --help: ${r.stderr}`);
    for (const f of r.stdout.match(FLAG_RE) ?? []) flags.add(f);
  }
  return flags;
}
function manFlags(roff) {
  const text = roff.split('\n').filter((l) => !l.startsWith('.\\"')).join('\n').replace(/\\-/g, '-');
  return new Set(text.match(FLAG_RE) ?? []);
}
function flagDiff(help, man) {
  return {
    notInMan: [...help].filter((f) => !man.has(f)).sort(),
    notInHelp: [...man].filter((f) => !help.has(f)).sort(),
  };
}

describe('sealmesh(1)', () => {
  test('the man page names exactly the flags of every command\'s --help', () => {
    const help = helpFlags();
    const roff = readFileSync(path.join(ROOT, 'doc/sealmesh.1'), 'utf8');
    const man = manFlags(roff);
    // The extraction sees the flags (control): a known set is present...
    for (const f of ['--model', '--config', '--join', '--state-dir', '--json', '--peer', '--hold', '--version'])
      assert.ok(help.has(f) && man.has(f), f);
    assert.ok(help.size >= 35, `${help.size} flags`);
    // ...and a man page missing one, or naming an extra one, is caught.
    const broken = manFlags(roff.replace(/\\-\\-max\\-body/g, 'max body') + '\n\\-\\-bogus\n');
    assert.deepEqual(flagDiff(help, broken), { notInMan: ['--max-body'], notInHelp: ['--bogus'] });
    assert.deepEqual(flagDiff(help, man), { notInMan: [], notInHelp: [] });
  });

  test('the man page is valid roff', { skip: have('groff') ? false : 'groff not installed' }, () => {
    const r = run('groff', ['-man', '-Tutf8', '-ww', '-z', path.join(ROOT, 'doc/sealmesh.1')]);
    assert.equal(r.status, 0);
    assert.equal(r.stderr, '');
  });
});

// --- make install ---------------------------------------------------------------

function makeInstall(vars) {
  const r = run('make', ['-s', '-C', ROOT, `BUILD=${BUILD}`, 'install', ...vars], { timeout: 120000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
}
const mode = (p) => (statSync(p).mode & 0o7777).toString(8);

describe('make install', () => {
  test('DESTDIR: binary, man page, unit, drop-in and config, with their modes', () => {
    const dest = tmpdir('sm-destdir-');
    makeInstall([`DESTDIR=${dest}`, 'PREFIX=/usr']);
    const want = {
      'usr/bin/sealmesh': '755',
      'usr/share/man/man1/sealmesh.1': '644',
      'usr/lib/systemd/system/sealmesh.service': '644',
      'usr/share/doc/sealmesh/examples/tpm.conf': '644',
      'usr/share/doc/sealmesh/examples/sealmesh.conf': '644',
      'etc/sealmesh/sealmesh.conf': '600',
    };
    for (const [f, m] of Object.entries(want)) assert.equal(mode(path.join(dest, f)), m, f);
    const unit = readFileSync(path.join(dest, 'usr/lib/systemd/system/sealmesh.service'), 'utf8');
    assert.doesNotMatch(unit, /@[A-Z]+@/, 'every placeholder filled in');
    assert.match(unit, /^ExecStart=\/usr\/bin\/sealmesh serve --config \$\{CREDENTIALS_DIRECTORY\}\/sealmesh\.conf$/m);
    assert.match(unit, /^LoadCredential=sealmesh\.conf:\/etc\/sealmesh\/sealmesh\.conf$/m);
    for (const d of ['DynamicUser=yes', 'StateDirectory=sealmesh', 'StateDirectoryMode=0700', 'ProtectSystem=strict',
      'NoNewPrivileges=yes', 'MemoryDenyWriteExecute=yes', 'PrivateTmp=yes', 'PrivateDevices=yes', 'DevicePolicy=closed',
      'CapabilityBoundingSet=', 'RestrictNamespaces=yes', 'SystemCallFilter=@system-service'])
      assert.match(unit, new RegExp(`^${d.replace(/[$]/g, '\\$&')}$`, 'm'), d);
    assert.match(unit, /^RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK$/m);
    assert.doesNotMatch(unit, /^DeviceAllow=/m, 'no device unless the TPM drop-in asks');
    assert.match(readFileSync(path.join(dest, 'usr/share/doc/sealmesh/examples/tpm.conf'), 'utf8'),
      /^DeviceAllow=\/dev\/tpmrm0 rw$/m);
    // A second install keeps an operator's edited config.
    writeFileSync(path.join(dest, 'etc/sealmesh/sealmesh.conf'), 'port = 1234\n', { mode: 0o600 });
    makeInstall([`DESTDIR=${dest}`, 'PREFIX=/usr']);
    assert.equal(readFileSync(path.join(dest, 'etc/sealmesh/sealmesh.conf'), 'utf8'), 'port = 1234\n');
  });

  test('the unit passes systemd-analyze verify, with and without the TPM drop-in',
    { skip: have('systemd-analyze') ? false : 'systemd-analyze not installed' }, () => {
      // A real prefix (no DESTDIR): verify checks that ExecStart exists and
      // that Documentation=man:sealmesh(1) resolves.
      const pre = tmpdir('sm-prefix-');
      makeInstall([`PREFIX=${pre}/usr`, `SYSCONFDIR=${pre}/etc`]);
      const unitDir = `${pre}/usr/lib/systemd/system`;
      const unit = `${unitDir}/sealmesh.service`;
      const env = { ...process.env, MANPATH: `${pre}/usr/share/man`, SYSTEMD_LOG_COLOR: '0' };
      const verify = (file, extra = {}) => run('systemd-analyze', ['verify', file], { env: { ...env, ...extra } });
      let r = verify(unit);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', 'no warning');
      // Control: verify reports a mistyped setting (it would exit 0 on it).
      const bad = tmpdir('sm-badunit-');
      writeFileSync(`${bad}/sealmesh.service`,
        readFileSync(unit, 'utf8').replace('ProtectSystem=strict', 'ProtectSystem=strictt'));
      r = verify(`${bad}/sealmesh.service`);
      assert.match(r.stderr, /strictt/, 'the check sees a bad line');
      // With the drop-in that opens the TPM.
      mkdirSync(`${unitDir}/sealmesh.service.d`);
      copyFileSync(path.join(ROOT, 'dist/tpm.conf'), `${unitDir}/sealmesh.service.d/tpm.conf`);
      r = verify(unit, { SYSTEMD_UNIT_PATH: `${unitDir}:` });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', 'no warning with the drop-in');
      // systemd's own exposure score for the sandbox (0 = best, 10 = none).
      const sec = run('systemd-analyze', ['security', '--offline=yes', unit], { env });
      const m = sec.stdout.match(/Overall exposure level for sealmesh\.service: ([\d.]+)/);
      assert.ok(m, sec.stdout + sec.stderr);
      assert.ok(Number(m[1]) <= 2.5, `exposure ${m[1]}`);
    });

  test('the installed binary runs from the installed example config (flags override it)', async () => {
    const dest = tmpdir('sm-run-');
    makeInstall([`DESTDIR=${dest}`, 'PREFIX=/usr']);
    const bin = path.join(dest, 'usr/bin/sealmesh');
    const conf = path.join(dest, 'etc/sealmesh/sealmesh.conf');
    // The example names /var/lib/sealmesh and fixed ports: the command line
    // moves them, as an operator testing it by hand would.
    const node = await startNode(['--config', conf], { bin });
    assert.notEqual(node.apiPort, 9337);
    await waitFor(() => node.stderr.length > 0, { what: 'a log line' });
    assert.match(node.stderr.split("\n")[0], /^\{"ts":"[^"]+","level":"/, "log-format = json from the file");
    const page = await fetch(`${node.console}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>sealmesh console<\/title>/);
    await node.stop();
  });
});

// --- --config FILE ---------------------------------------------------------------

describe('--config FILE', () => {
  test('options from the file, overridden by the command line', async () => {
    const mock = await startMock();
    const dir = tmpdir('sm-conf-');
    const conf = path.join(dir, 'sealmesh.conf');
    writeFileSync(conf, `# test\nport = 1\nmodel = m=${mock.url}\n\nlog-format = json\nno-relay\n`);
    const node = await startNode(['--config', conf]); // startNode adds --port 0
    assert.notEqual(node.apiPort, 1);
    const models = await (await fetch(`${node.api}/models`)).json();
    assert.deepEqual(models.data.map((x) => x.id), ['m']);
    const st = await node.status();
    assert.equal(st.relay, false, 'no-relay from the file');
    await waitFor(() => /^\{/m.test(node.stderr), { what: 'a JSON log line' });
    await node.stop();
  });

  test('a bad line names FILE:LINE; a missing file names the path and the OS error', () => {
    const dir = tmpdir('sm-conf-');
    const conf = path.join(dir, 'c.conf');
    const serve = (...a) => run(SEALMESH, ['serve', '--port', '0', '--console', '0', '--mesh-port', '0',
      '--state-dir', path.join(dir, 'st'), ...a]);
    writeFileSync(conf, 'port = 0\n# x\nprot = 3\n');
    let r = serve('--config', conf);
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim(), `sealmesh: ${conf}:3: unknown option 'prot'`);
    writeFileSync(conf, '\nmesh-port = abc\n');
    r = serve('--config', conf);
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim(), `sealmesh: ${conf}:2: bad value for --mesh-port: 'abc'`);
    writeFileSync(conf, 'model\n');
    r = serve('--config', conf);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`${conf}:1: 'model' needs a value`));
    r = serve('--config', path.join(dir, 'missing.conf'));
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim(), `sealmesh: config file ${path.join(dir, 'missing.conf')}: No such file or directory`);
  });

  test('a config file holding an invite token must be 0600', async () => {
    const host = await startNode([]);
    const dir = tmpdir('sm-conf-');
    const conf = path.join(dir, 'c.conf');
    writeFileSync(conf, `join = ${host.token}\n`, { mode: 0o644 });
    chmodSync(conf, 0o644);
    const r = run(SEALMESH, ['client', '--config', conf, '--port', '0', '--console', '0']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`${conf}:1: holds an invite token .*mode 644`));
    assert.ok(!r.stderr.includes(host.token), 'the token is not echoed');
    chmodSync(conf, 0o600);
    const c = await startNode(['--config', conf, '--gossip-interval', '500'], { cmd: 'client' });
    assert.equal(c.consolePort > 0, true);
    await c.stop();
    await host.stop();
  });
});

// --- startup errors ----------------------------------------------------------------

describe('startup errors name the path or address and the OS error', () => {
  const serve = (args) => run(SEALMESH, ['serve', '--port', '0', '--console', '0', '--mesh-port', '0',
    '--bind', '127.0.0.1', ...args]);

  test('state dir: missing parent, wrong mode, key file not a file', () => {
    let r = serve(['--state-dir', '/nonexistent-sm/state']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /\/nonexistent-sm\/state: No such file or directory/);
    assert.match(lastLine(r.stderr), /state dir \/nonexistent-sm\/state/);

    const open = tmpdir('sm-mode-');
    chmodSync(open, 0o755);
    r = serve(['--state-dir', open]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`state dir ${open} must be owned by this user with mode 0700 \\(it is 755\\)`));
    assert.match(lastLine(r.stderr), new RegExp(`state dir ${open}`));

    const d = tmpdir('sm-key-');
    mkdirSync(path.join(d, 'identity.key'));
    r = serve(['--state-dir', d]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`key file ${d}/identity.key: not a regular file`));
    assert.match(lastLine(r.stderr), new RegExp(`state dir ${d}`));

    const t = tmpdir('sm-secret-');
    writeFileSync(path.join(t, 'mesh.secret'), 'short', { mode: 0o600 });
    r = serve(['--state-dir', t]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`cannot read ${t}/mesh.secret: too short`));
    assert.match(lastLine(r.stderr), new RegExp(`state dir ${t}`));
  });

  test('a port in use: API, console and mesh port', async () => {
    const srv = net.createServer();
    await new Promise((res) => srv.listen(0, '127.0.0.1', res));
    const { port } = srv.address();
    try {
      for (const flag of ['--port', '--console', '--mesh-port']) {
        const r = serve(['--state-dir', tmpdir('sm-port-'), flag, String(port)]);
        assert.equal(r.status, 1, flag);
        assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}: address already in use`), flag);
        assert.match(lastLine(r.stderr), new RegExp(`127\\.0\\.0\\.1.*\\b${port}\\b`), `${flag}: ${lastLine(r.stderr)}`);
      }
    } finally {
      srv.close();
    }
  });

  test('files named by flags: --gguf, --llama-server, --tpm-ca, --allowed-binaries', () => {
    const d = tmpdir('sm-files-');
    const gguf = path.join(d, 'm.gguf');
    writeFileSync(gguf, 'GGUF');
    const cases = [
      [['--gguf', path.join(d, 'none.gguf')], `--gguf ${d}/none.gguf: No such file or directory`],
      [['--gguf', gguf, '--llama-server', `${d}/llama-server`], `--llama-server ${d}/llama-server: No such file or directory`],
      [['--gguf', gguf, '--llama-server', 'sm-no-such-llama'], '--llama-server sm-no-such-llama: not found in PATH'],
      [['--tpm-ca', gguf], `--tpm-ca ${gguf}: Not a directory`],
      [['--require-attested-hosts', '--allowed-binaries', `${d}/list`], `--allowed-binaries ${d}/list: No such file or directory`],
    ];
    for (const [args, msg] of cases) {
      const r = serve(['--state-dir', path.join(d, 'st'), ...args]);
      assert.equal(r.status, 1, args.join(' '));
      assert.ok(lastLine(r.stderr).startsWith(`sealmesh: ${msg}`), `${args.join(' ')}: ${r.stderr}`);
    }
  });
});
