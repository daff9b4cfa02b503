// The mesh on loopback: real nodes joined by invite tokens, gossip, tunnels
// through one hop and through a relay, failures, leaving and rejoining.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import {
  chatBody, expectedTokens, normalize, postJSON, readStream, sleep, sseContent,
  startMock, startNode, stopAll, tmpdir, waitFor, SEALMESH, TEST_SEALMESH,
  freePort,
} from './lib.mjs';

after(stopAll);

const models = async (node) =>
  (await (await fetch(`${node.api}/models`)).json()).data.map((m) => m.id).sort();
const metric = async (node, name) => {
  const m = (await node.metrics()).match(new RegExp(`^${name} (\\d+)`, 'm'));
  return m ? Number(m[1]) : NaN;
};
const fast = ['--gossip-interval', '500'];

describe('joining', () => {
  test('a malformed token is a clear error and a non-zero exit', () => {
    const r = spawnSync(SEALMESH, ['client', '--join', 'not-a-token!', '--port', '0', '--console', '0'],
      { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /bad invite token: /);
  });

  test('a token for the right node with the wrong join secret is refused', async () => {
    const dir = tmpdir('sm-old-');
    const port = await freePort();
    writeFileSync(path.join(dir, 'mesh.secret'), Buffer.alloc(32, 1), { mode: 0o600 });
    const first = await startNode(['--mesh-port', String(port)], { stateDir: dir });
    const oldToken = first.token;
    await first.stop();
    // Same node id and address, new mesh secret: the old token's secret is wrong.
    writeFileSync(path.join(dir, 'mesh.secret'), Buffer.alloc(32, 2), { mode: 0o600 });
    const second = await startNode(['--mesh-port', String(port)], { stateDir: dir });
    const t0 = Date.now();
    const r = spawnSync(SEALMESH, ['client', '--join', oldToken, '--port', '0', '--console', '0',
      '--bind', '127.0.0.1'], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /cannot join the mesh: the node refused our join proof/);
    assert.ok(Date.now() - t0 < 15000, 'no hang');
    const st = await second.status();
    assert.equal(st.peers.length, 0, 'the refused node never became a peer');
    await second.stop();
  });

  test('a token whose node is gone fails with a clear error, not a hang', async () => {
    const gone = await startNode([]);
    await gone.stop();
    const r = spawnSync(SEALMESH, ['client', '--join', gone.token, '--port', '0', '--console', '0',
      '--bind', '127.0.0.1'], { encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /cannot join the mesh: no address in the token could be reached/);
  });
});

describe('one hop', () => {
  let mock; let host; let client;

  test('a client joins with a good token and sees the host\'s model', async () => {
    mock = await startMock(['--tokens', '6']);
    host = await startNode(['--model', `m=${mock.url}`, ...fast]);
    client = await startNode(['--join', host.token, ...fast], { cmd: 'client' });
    await waitFor(async () => (await models(client)).includes('m'), { what: 'gossip' });
    const st = await client.status();
    assert.equal(st.role, 'client');
    const hp = st.peers.find((p) => p.models.includes('m'));
    assert.equal(hp.link, 'direct');
    assert.equal(hp.state, 'alive');
    assert.equal(hp.id, (await host.status()).node_id);
    assert.ok(st.mesh_id);
    assert.equal(st.token, undefined, 'the join secret is not served by the console');
  });

  test('non-streaming and streaming requests match the backend byte for byte', async () => {
    const body = chatBody('m', { mock: { tokens: 9 } });
    const direct = await postJSON(`${mock.url}/v1/chat/completions`, body);
    const via = await postJSON(`${client.api}/chat/completions`, body);
    assert.equal(via.status, 200);
    assert.equal(normalize(via.text), normalize(direct.text));
    assert.match(via.headers.get('x-sealmesh-route'), /^remote:/);
    const sbody = chatBody('m', { stream: true, mock: { tokens: 12, delay_ms: 60 } });
    const a = await readStream(await fetch(`${client.api}/chat/completions`, { method: 'POST', body: sbody }));
    const b = await readStream(await fetch(`${mock.url}/v1/chat/completions`, { method: 'POST', body: sbody }));
    assert.equal(normalize(a.text), normalize(b.text));
    assert.ok(a.chunks.length > 3, 'streamed live');
    assert.ok(await metric(host, 'sealmesh_tunnels_in_total') >= 2);
  });

  test('an unknown model is 404 across the mesh', async () => {
    const r = await postJSON(`${client.api}/chat/completions`, chatBody('nope'));
    assert.equal(r.status, 404);
  });

  test('the host killed mid-stream: the client gets a clean error within seconds', async () => {
    const res = await fetch(`${client.api}/chat/completions`, {
      method: 'POST', body: chatBody('m', { stream: true, mock: { tokens: 400, delay_ms: 20 } }),
    });
    const reader = res.body.getReader();
    await reader.read();
    const t0 = Date.now();
    host.child.kill('SIGKILL');
    let text = '';
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value);
    }
    assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms`);
    assert.match(text, /"code":"upstream_stream_cut"/);
    // Once the host is gone its model is unavailable: 503 with Retry-After.
    await waitFor(async () => {
      const r = await postJSON(`${client.api}/chat/completions`, chatBody('m'));
      return r.status === 503 && r.headers.get('retry-after');
    }, { what: '503 after host death', timeoutMs: 15000 });
  });
});

describe('relays, leaving, forged gossip', () => {
  let mock; let relay; let host; let client; let hostDir;

  test('a client that cannot reach the host goes through a relay', async () => {
    mock = await startMock(['--tokens', '5']);
    relay = await startNode([...fast]);
    hostDir = tmpdir('sm-host-');
    // The host advertises an address nobody can dial, and joins the relay.
    host = await startNode(['--model', `m=${mock.url}`, '--advertise', '127.0.0.1:9',
      '--join', relay.token, ...fast], { stateDir: hostDir });
    client = await startNode(['--join', relay.token, ...fast], { cmd: 'client' });
    await waitFor(async () => (await models(client)).includes('m'), { what: 'gossip via relay' });
    const body = chatBody('m', { mock: { tokens: 8 } });
    const direct = await postJSON(`${mock.url}/v1/chat/completions`, body);
    const via = await postJSON(`${client.api}/chat/completions`, body);
    assert.equal(via.status, 200, via.text);
    assert.equal(normalize(via.text), normalize(direct.text));
    const sbody = chatBody('m', { stream: true, mock: { tokens: 10, delay_ms: 10 } });
    const s = await readStream(await fetch(`${client.api}/chat/completions`, { method: 'POST', body: sbody }));
    assert.equal(sseContent(s.text), expectedTokens(10));
    assert.ok(await metric(relay, 'sealmesh_relayed_total') >= 2);
    const hp = (await client.status()).peers.find((p) => p.models.includes('m'));
    assert.equal(hp.link, 'relay');
    assert.equal(hp.via, (await relay.status()).node_id);
  });

  test('a forged announcement is dropped', async () => {
    const before = await metric(client, 'sealmesh_announcements_dropped_total');
    const forger = await startNode(['--join', relay.token, '--test-forge-gossip', ...fast],
      { bin: TEST_SEALMESH, cmd: 'client' });
    await waitFor(async () => await metric(relay, 'sealmesh_announcements_dropped_total') > 0,
      { what: 'relay drops the forgery' });
    // The forger itself is still known by its genuine announcement only.
    const fid = (await forger.status()).node_id;
    await waitFor(async () => (await relay.status()).peers.some((p) => p.id === fid), { what: 'genuine' });
    assert.ok(await metric(client, 'sealmesh_announcements_dropped_total') >= before);
    await forger.stop();
  });

  test('a node that leaves disappears at once, and can rejoin', async () => {
    const hid = (await host.status()).node_id;
    await host.stop(); // SIGTERM: signed leaving announcement + GOAWAY
    const t0 = Date.now();
    // Gone at once, not after the stale timeout (3 gossip intervals).
    await waitFor(async () => !(await client.status()).peers.some((p) => p.id === hid),
      { what: 'leave seen', timeoutMs: 5000 });
    assert.ok(Date.now() - t0 < 5000);
    assert.ok(!(await models(client)).includes('m'));
    host = await startNode(['--model', `m=${mock.url}`, '--advertise', '127.0.0.1:9',
      '--join', relay.token, ...fast], { stateDir: hostDir });
    await waitFor(async () => (await models(client)).includes('m'), { what: 'rejoin' });
    const r = await postJSON(`${client.api}/chat/completions`, chatBody('m'));
    assert.equal(r.status, 200);
  });

  test('the relay killed: requests fail cleanly, then the mesh recovers', async () => {
    relay.child.kill('SIGKILL');
    const r = await waitFor(async () => {
      const x = await postJSON(`${client.api}/chat/completions`, chatBody('m'));
      return x.status !== 200 && x;
    }, { what: 'failure after relay death', timeoutMs: 15000 });
    assert.ok([502, 503].includes(r.status), `status ${r.status}`);
    assert.equal(typeof r.json.error.message, 'string');
    // The node keeps serving its API.
    assert.equal((await fetch(`${client.api}/models`)).status, 200);
  });
});

describe('--no-relay', () => {
  test('a node with --no-relay forwards nothing: the host stays unreachable', async () => {
    const mock = await startMock(['--tokens', '2']);
    const norelay = await startNode(['--no-relay', ...fast]);
    const host = await startNode(['--model', `m=${mock.url}`, '--advertise', '127.0.0.1:9',
      '--join', norelay.token, ...fast]);
    const client = await startNode(['--join', norelay.token, ...fast], { cmd: 'client' });
    const hid = (await host.status()).node_id;
    await waitFor(async () => (await client.status()).peers.some((p) => p.id === hid),
      { what: 'host learned through gossip' });
    const nr = (await client.status()).peers.find((p) => !p.models.length);
    assert.equal(nr.relay_allowed, false);
    const r = await postJSON(`${client.api}/chat/completions`, chatBody('m'));
    assert.equal(r.status, 503, r.text);
    assert.equal((await mock.stats()).requests, 0);
    assert.equal(await metric(norelay, 'sealmesh_relayed_total'), 0);
  });
});

describe('status output', () => {
  test('sealmesh status prints a peer table', async () => {
    const a = await startNode([...fast]);
    const b = await startNode(['--join', a.token, ...fast]);
    await waitFor(async () => (await b.status()).peers.length === 1, { what: 'peer' });
    const r = spawnSync(SEALMESH, ['status', '--console', String(b.consolePort)], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /PEER\s+ROLE\s+STATE\s+LINK/);
    assert.match(r.stdout, /alive\s+direct/);
    assert.match(r.stdout, /E2E\s+ATTESTATION/);
    // Default: a software attestation, sealed traffic.
    await waitFor(async () => /yes\s+self_signed\/verified/.test(spawnSync(SEALMESH,
      ['status', '--console', String(b.consolePort)], { encoding: 'utf8' }).stdout), { what: 'attested row' });
    const t = spawnSync(SEALMESH, ['token', '--state-dir', a.stateDir], { encoding: 'utf8' });
    assert.equal(t.stdout.trim(), a.token);
    await sleep(10);
  });
});
