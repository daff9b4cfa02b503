// Privilege separation (doc/PRIVSEP.md): the signer holds every key, the
// network-facing worker holds none, runs sandboxed as another user, and the
// signer measures it from outside.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import {
  TEST_SEALMESH, chatBody, childPids, expectedTokens, postJSON, scanMemory, sleep,
  startMock, startNode, stopAll, tmpdir, waitFor,
} from './lib.mjs';

after(stopAll);

const fast = ['--gossip-interval', '300'];
const INF_SK = 'a1'.repeat(8) + '5e'.repeat(8) + 'c0'.repeat(8) + 'de'.repeat(8);
const env = { ...process.env, SM_TEST_INFKEY_SK: INF_SK };
const models = async (node) =>
  (await (await fetch(`${node.api}/models`)).json()).data.map((m) => m.id);

const children = childPids;
const workerOf = (node) => {
  const kids = children(node.pid);
  assert.equal(kids.length, 1, `one worker under the signer (${kids})`);
  return kids[0];
};
const statusField = (pid, name) =>
  readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${name}:\\s+(.*)$`, 'm'))[1];

describe('privilege separation', () => {
  let mock, host, client, secrets;

  test('a host serves sealed requests with its keys in the signer', async () => {
    mock = await startMock(['--tokens', '5']);
    const dir = tmpdir('sm-privsep-');
    const r = spawnSync(TEST_SEALMESH, ['owner', 'init', '--state-dir', dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    host = await startNode(['--model', `m=${mock.url}`, ...fast], { bin: TEST_SEALMESH, env, stateDir: dir });
    // An owned mesh: the invite is signed by the owner key (in the signer:
    // `sealmesh invite` reads the key file, the node redeems it through the
    // signer's owner signature).
    const inv = spawnSync(TEST_SEALMESH, ['invite', '--state-dir', dir], { encoding: 'utf8' });
    assert.equal(inv.status, 0, inv.stderr);
    client = await startNode(['--join', inv.stdout.trim(), ...fast], { cmd: 'client' });
    await waitFor(async () => (await models(client)).includes('m'), { what: 'gossip' });
    for (let i = 0; i < 3; i++) {
      const res = await postJSON(`${client.api}/chat/completions`, chatBody('m'));
      assert.equal(res.status, 200, JSON.stringify(res.json));
      assert.equal(res.json.choices[0].message.content, expectedTokens(5));
    }
    const st = await host.status();
    assert.equal(st.key_epoch, 0x7e57, 'the known test key is the one announced');
    secrets = {
      identity: readFileSync(path.join(dir, 'identity.key')),
      owner: readFileSync(path.join(dir, 'owner', 'identity.key')),
      inference: Buffer.from(INF_SK, 'hex'),
    };
    assert.equal(secrets.identity.length, 32);
    assert.equal(secrets.owner.length, 32);
  });

  test("the worker's memory holds no identity, owner or inference secret; the signer's holds all three (control)", () => {
    const w = workerOf(host);
    assert.deepEqual(scanMemory(w, secrets), [], 'worker memory');
    assert.deepEqual(scanMemory(host.pid, secrets), ['identity', 'inference', 'owner'], 'control: the signer');
  });

  test('control: a node run with --no-privsep holds them in its one process', async () => {
    const dir = tmpdir('sm-noprivsep-');
    const r = spawnSync(TEST_SEALMESH, ['owner', 'init', '--state-dir', dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const one = await startNode(['--no-privsep', '--model', `m=${mock.url}`, ...fast],
      { bin: TEST_SEALMESH, env, stateDir: dir });
    assert.equal(children(one.pid).length, 0);
    const s = {
      identity: readFileSync(path.join(dir, 'identity.key')),
      owner: readFileSync(path.join(dir, 'owner', 'identity.key')),
      inference: Buffer.from(INF_SK, 'hex'),
    };
    assert.deepEqual(scanMemory(one.pid, s), ['identity', 'inference', 'owner']);
    // ... and says that it measured itself.
    const p = (await one.status()).posture;
    assert.equal(p.measured_by, 'self');
    assert.notEqual(p.keys_separate, true);
    await one.stop();
  });

  test('started as root, the worker runs as nobody, non-dumpable, filtered; the key files stay root-only', async () => {
    const w = workerOf(host);
    assert.match(statusField(w, 'Uid'), /^65534\s+65534\s+65534\s+65534$/);
    assert.equal(statusField(w, 'Seccomp'), '2');
    assert.equal(statusField(w, 'NoNewPrivs'), '1');
    // Non-dumpable: its /proc files belong to root, not to its own user.
    assert.equal(statSync(`/proc/${w}/mem`).uid, 0);
    for (const f of ['identity.key', 'owner/identity.key']) {
      const st = statSync(path.join(host.stateDir, f));
      assert.equal(st.uid, 0, f);
      assert.equal(st.mode & 0o777, 0o600, f);
    }
    // The worker's user cannot read them from disk either.
    const cat = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'cat',
      path.join(host.stateDir, 'identity.key')], { encoding: 'utf8' });
    assert.notEqual(cat.status, 0);
    assert.match(cat.stderr, /Permission denied/);
  });

  test('the posture the host announces is the signer\'s measurement of the worker', async () => {
    const st = await host.status();
    const p = st.posture;
    assert.equal(p.measured_by, 'signer');
    assert.equal(p.seccomp, true);
    assert.equal(p.keys_separate, true);
    assert.equal(p.no_new_privs, true);
    const peer = (await client.status()).peers.find((x) => x.models.includes('m'));
    assert.equal(peer.posture.measured_by, 'signer', 'field 37 as the client sees it');
  });

  test('a debugger attaching to the worker stops the node', async () => {
    const dir = tmpdir('sm-privsep-');
    const n = await startNode([...fast], { bin: TEST_SEALMESH, stateDir: dir });
    const w = workerOf(n);
    // ptrace(PTRACE_ATTACH) from root: the signer notices TracerPid.
    const py = spawnSync('python3', ['-c', `
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
assert libc.ptrace(16, ${w}, 0, 0) == 0, ctypes.get_errno()
time.sleep(4)
`], { encoding: 'utf8', timeout: 20000 });
    assert.equal(py.status, 0, py.stderr);
    await waitFor(() => n.exited !== null, { what: 'node stopped', timeoutMs: 10000 });
    assert.equal(n.exited.code, 1);
    assert.match(n.stderr, /a debugger attached to the worker/);
  });

  test('the worker is gone: the signer stops with a clear line; the signer is gone: so is the worker', async () => {
    const a = await startNode([...fast], { bin: TEST_SEALMESH, stateDir: tmpdir('sm-privsep-') });
    process.kill(workerOf(a), 'SIGKILL');
    await waitFor(() => a.exited !== null, { what: 'signer stopped' });
    assert.equal(a.exited.code, 1);
    assert.match(a.stderr, /worker \d+ was killed by signal 9/);
    const b = await startNode([...fast], { bin: TEST_SEALMESH, stateDir: tmpdir('sm-privsep-') });
    const w = workerOf(b);
    process.kill(b.pid, 'SIGKILL');
    await waitFor(() => { try { process.kill(w, 0); return false; } catch { return true; } },
      { what: 'worker gone with its signer' });
  });
});

describe('seccomp', () => {
  test('a forbidden system call (execve) kills the worker, and the signer says so', async () => {
    const n = await startNode([...fast], {
      bin: TEST_SEALMESH, stateDir: tmpdir('sm-privsep-'),
      env: { ...process.env, SM_TEST_FORBIDDEN_SYSCALL: '1' },
    });
    await waitFor(() => n.exited !== null, { what: 'node stopped' });
    assert.equal(n.exited.code, 1);
    assert.match(n.stderr, /killed by its sandbox: it made a forbidden system call/);
  });

  test('control: the same call without the sandbox (--no-privsep) runs /bin/true', async () => {
    const n = await startNode(['--no-privsep', ...fast], {
      bin: TEST_SEALMESH, stateDir: tmpdir('sm-privsep-'),
      env: { ...process.env, SM_TEST_FORBIDDEN_SYSCALL: '1' },
    });
    await waitFor(() => n.exited !== null, { what: 'process replaced' });
    assert.deepEqual(n.exited, { code: 0, sig: null });
    assert.match(n.stderr, /test: calling execve/);
    await sleep(10);
  });
});
