// End-to-end encryption between the asking node and the host: policy for
// hosts without a key, downgrade protection, key epochs, counters.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  chatBody, expectedTokens, postJSON, readStream, sseContent, startMock,
  startNode, stopAll, tmpdir, waitFor,
  freePort,
} from './lib.mjs';

after(stopAll);

const fast = ['--gossip-interval', '300'];
const models = async (node) =>
  (await (await fetch(`${node.api}/models`)).json()).data.map((m) => m.id);
const metric = async (node, name) => {
  const m = (await node.metrics()).match(new RegExp(`^${name} (\\d+)`, 'm'));
  return m ? Number(m[1]) : NaN;
};
const hostPeer = async (node) => (await node.status()).peers.find((p) => p.models.includes('m'));

describe('sealed by default', () => {
  test('every remote request is sealed to the host key from its signed announcement', async () => {
    const mock = await startMock(['--tokens', '6']);
    const host = await startNode(['--model', `m=${mock.url}`, ...fast]);
    const client = await startNode(['--join', host.token, ...fast], { cmd: 'client' });
    await waitFor(async () => (await models(client)).includes('m'), { what: 'gossip' });
    const st = await host.status();
    assert.equal(st.e2e, true);
    const hp = await hostPeer(client);
    assert.equal(hp.e2e, true);
    assert.equal(hp.key_epoch, st.key_epoch);
    const r = await postJSON(`${client.api}/chat/completions`, chatBody('m'));
    assert.equal(r.json.choices[0].message.content, expectedTokens(6));
    const s = await readStream(await fetch(`${client.api}/chat/completions`, {
      method: 'POST', body: chatBody('m', { stream: true, mock: { tokens: 20, delay_ms: 60 } }),
    }));
    assert.equal(sseContent(s.text), expectedTokens(20));
    assert.ok(s.chunks.length >= 8, `SSE tokens arrive live (${s.chunks.length} reads)`);
    assert.equal(await metric(client, 'sealmesh_e2e_sealed_total'), 2);
    assert.equal(await metric(client, 'sealmesh_plaintext_out_total'), 0);
    assert.equal(await metric(host, 'sealmesh_e2e_opened_total'), 2);
    assert.equal(await metric(host, 'sealmesh_e2e_decrypt_failures_total'), 0);
  });

  test('a request in flight survives key rotations; new requests use the new key', async () => {
    const mock = await startMock([]);
    const host = await startNode(['--model', `m=${mock.url}`, '--key-epoch', '1', ...fast]);
    const client = await startNode(['--join', host.token, ...fast], { cmd: 'client' });
    await waitFor(async () => (await models(client)).includes('m'), { what: 'gossip' });
    const epoch0 = (await host.status()).key_epoch;
    // 40 tokens at 100 ms: the stream spans several epochs.
    const s = await readStream(await fetch(`${client.api}/chat/completions`, {
      method: 'POST', body: chatBody('m', { stream: true, mock: { tokens: 40, delay_ms: 100 } }),
    }));
    assert.equal(sseContent(s.text), expectedTokens(40));
    const epoch1 = (await host.status()).key_epoch;
    assert.notEqual(epoch0, epoch1, 'the key rotated');
    await waitFor(async () => (await hostPeer(client)).key_epoch !== epoch0, { what: 'new key gossiped' });
    for (let i = 0; i < 5; i++) {
      const r = await postJSON(`${client.api}/chat/completions`, chatBody('m', { mock: { tokens: 3 } }));
      assert.equal(r.status, 200, r.text);
    }
    assert.equal(await metric(host, 'sealmesh_e2e_decrypt_failures_total'), 0);
  });
});

describe('sealed-request versions', () => {
  test('version 2 between new nodes; version 1 when either side offers only that', async () => {
    const mock = await startMock(['--tokens', '3']);
    const host = await startNode(['--model', `m=${mock.url}`, ...fast]);
    const oldHost = await startNode(['--model', `m1=${mock.url}`, '--e2e-envelope', '1',
      '--join', host.token, ...fast]);
    const client = await startNode(['--join', host.token, ...fast], { cmd: 'client' });
    const oldClient = await startNode(['--join', host.token, '--e2e-envelope', '1', ...fast],
      { cmd: 'client' });
    for (const c of [client, oldClient]) {
      await waitFor(async () => {
        const ms = await models(c);
        return ms.includes('m') && ms.includes('m1');
      }, { what: 'gossip' });
    }
    const peerFor = async (node, model) => (await node.status()).peers.find((p) => p.models.includes(model));
    assert.equal((await peerFor(client, 'm')).envelope_version, 2);
    assert.equal((await peerFor(client, 'm1')).envelope_version, 1);
    // Three requests each: new client to new host (v2, one ephemeral key
    // reused), new client to old host (v1), old client to new host (v1).
    for (const [c, model] of [[client, 'm'], [client, 'm1'], [oldClient, 'm']]) {
      for (let i = 0; i < 3; i++) {
        const r = await postJSON(`${c.api}/chat/completions`, chatBody(model));
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.choices[0].message.content, expectedTokens(3));
      }
    }
    assert.equal(await metric(host, 'sealmesh_e2e_opened_total'), 6);
    assert.equal(await metric(host, 'sealmesh_e2e_opened_v2_total'), 3);
    assert.equal(await metric(oldHost, 'sealmesh_e2e_opened_total'), 3);
    assert.equal(await metric(oldHost, 'sealmesh_e2e_opened_v2_total'), 0);
    assert.equal(await metric(host, 'sealmesh_e2e_decrypt_failures_total'), 0);
  });
});

describe('mixed versions', () => {
  let mock; let host;

  test('a host without E2E gets no prompt unless the client allows plaintext', async () => {
    mock = await startMock(['--tokens', '4']);
    host = await startNode(['--model', `m=${mock.url}`, '--no-e2e', ...fast]);
    const strict = await startNode(['--join', host.token, ...fast], { cmd: 'client' });
    await waitFor(async () => (await hostPeer(strict))?.e2e === false, { what: 'gossip' });
    const before = (await mock.stats()).requests;
    const r = await postJSON(`${strict.api}/chat/completions`, chatBody('m'));
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.code, 'model_unavailable');
    assert.equal((await mock.stats()).requests, before, 'no byte of the prompt reached the host');

    const lax = await startNode(['--join', host.token, '--allow-plaintext-peers', ...fast], { cmd: 'client' });
    await waitFor(async () => (await models(lax)).includes('m'), { what: 'gossip' });
    const ok = await postJSON(`${lax.api}/chat/completions`, chatBody('m'));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.choices[0].message.content, expectedTokens(4));
    assert.equal(await metric(lax, 'sealmesh_plaintext_out_total'), 1);
  });

  test('an old (--no-e2e) client still reaches an E2E host', async () => {
    const h2 = await startNode(['--model', `m=${mock.url}`, ...fast]);
    const old = await startNode(['--join', h2.token, '--no-e2e', ...fast], { cmd: 'client' });
    await waitFor(async () => (await models(old)).includes('m'), { what: 'gossip' });
    const r = await postJSON(`${old.api}/chat/completions`, chatBody('m'));
    assert.equal(r.status, 200);
  });

  test('downgrade: a host that once offered a key never gets plaintext', async () => {
    const dir = tmpdir('sm-dg-');
    const port = await freePort();
    const relay = await startNode([...fast]);
    let h = await startNode(['--model', `m=${mock.url}`, '--mesh-port', String(port),
      '--join', relay.token, ...fast], { stateDir: dir });
    const client = await startNode(['--join', relay.token, '--allow-plaintext-peers', ...fast], { cmd: 'client' });
    await waitFor(async () => (await hostPeer(client))?.e2e === true, { what: 'key seen' });
    await waitFor(async () => (await models(client)).includes('m'), { what: 'routable' });
    assert.equal((await postJSON(`${client.api}/chat/completions`, chatBody('m'))).status, 200);
    // The same node comes back without a key (say, an attacker's gossip).
    await h.stop();
    h = await startNode(['--model', `m=${mock.url}`, '--mesh-port', String(port), '--no-e2e',
      '--join', relay.token, ...fast], { stateDir: dir });
    await waitFor(async () => (await hostPeer(client))?.e2e === false, { what: 'keyless announcement' });
    const before = (await mock.stats()).requests;
    const r = await postJSON(`${client.api}/chat/completions`, chatBody('m'));
    assert.equal(r.status, 503, r.text);
    assert.equal((await mock.stats()).requests, before);
    assert.equal((await hostPeer(client)).e2e_required, true);
  });
});
