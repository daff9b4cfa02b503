// Three hosts in network namespaces made by this test:
//
//   [test] 10.231.0.1 -- 10.231.0.2 [client] 10.231.1.1 -- 10.231.1.2 [relay]
//                                            10.231.2.1 -- 10.231.2.2 [host + backend]
//
// The client has no route to the host's network and must go through the relay.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import {
  chatBody, expectedTokens, netnsSetup, normalize, nsGet, postJSON, readStream,
  sseContent, startMock, startNode, stopAll, tmpdir, waitFor, TEST_SEALMESH,
} from './lib.mjs';

const root = process.getuid() === 0;
const P = `sm${process.pid % 10000}`;
let teardown = () => {};
let mock; let relay; let host; let client; let api;
let record;

before(async () => {
  if (!root) return;
  teardown = netnsSetup(P, ['C', 'R', 'H'], [
    [null, '10.231.0.1', 'C', '10.231.0.2'],
    ['C', '10.231.1.1', 'R', '10.231.1.2'],
    ['R', '10.231.2.1', 'H', '10.231.2.2'],
  ]);
  const fast = ['--gossip-interval', '500'];
  mock = await startMock(['--tokens', '7'], { netns: `${P}H` });
  // The relay is a test build that records every byte it forwards.
  record = path.join(tmpdir('sm-rec-'), 'relay.bin');
  relay = await startNode(['--bind', '0.0.0.0', '--mesh-port', '9338', '--test-record-relay', record, ...fast],
    { netns: `${P}R`, bin: TEST_SEALMESH });
  host = await startNode(['--model', `m=${mock.url}`, '--bind', '10.231.2.2', '--mesh-port', '9338',
    '--join', relay.token, ...fast], { netns: `${P}H` });
  client = await startNode(['--listen-all', '--console-listen-all', '--insecure-no-auth', '--bind', '10.231.1.1',
    '--join', relay.token, ...fast],
    { netns: `${P}C`, cmd: 'client' });
  api = `http://10.231.0.2:${client.apiPort}/v1`;
}, { timeout: 60000 });

after(async () => {
  await stopAll();
  teardown();
});

test('the relay token lists its interface addresses, loopback last', { skip: !root && 'needs root for ip netns' }, () => {
  const st = JSON.parse(nsGet(`${P}R`, `http://127.0.0.1:${relay.consolePort}/api/status`));
  assert.equal(st.token, undefined, 'the join secret is not served by the console');
  const hostSt = JSON.parse(nsGet(`${P}H`, `http://127.0.0.1:${host.consolePort}/api/status`));
  const rel = hostSt.peers.find((p) => p.id === st.node_id);
  assert.deepEqual(rel.addresses, ['10.231.1.2:9338', '10.231.2.1:9338', '127.0.0.1:9338']);
});

test('the client cannot reach the host and goes through the relay', { skip: !root && 'needs root for ip netns' }, async () => {
  await waitFor(async () => {
    const r = await fetch(`${api}/models`);
    return (await r.json()).data.some((m) => m.id === 'm');
  }, { what: 'gossip across namespaces', timeoutMs: 20000 });
  const body = chatBody('m', { mock: { tokens: 9 } });
  const via = await postJSON(`${api}/chat/completions`, body);
  assert.equal(via.status, 200, via.text);
  assert.equal(via.json.choices[0].message.content, expectedTokens(9));
  const sbody = chatBody('m', { stream: true, mock: { tokens: 15, delay_ms: 10 } });
  const s = await readStream(await fetch(`${api}/chat/completions`, { method: 'POST', body: sbody }));
  assert.equal(sseContent(s.text), expectedTokens(15));
  assert.ok(s.text.endsWith('data: [DONE]\n\n'));
  const st = await (await fetch(`http://10.231.0.2:${client.consolePort}/api/status`)).json();
  const hp = st.peers.find((p) => p.models.includes('m'));
  assert.equal(hp.link, 'relay');
  const relayMetrics = nsGet(`${P}R`, `http://127.0.0.1:${relay.consolePort}/metrics`);
  assert.match(relayMetrics, /sealmesh_relayed_total [1-9]/);
});

test('byte for byte through the relay, compared with the backend itself', { skip: !root && 'needs root for ip netns' }, async () => {
  const body = chatBody('m', { mock: { tokens: 11 } });
  const direct = nsGet(`${P}H`, `${mock.url}/v1/chat/completions`, body);
  assert.ok(direct.length > 0);
  const via = await postJSON(`${api}/chat/completions`, body);
  assert.equal(normalize(via.text), normalize(direct));
});

test('the relay never holds plaintext: neither prompt nor completion is in what it forwarded',
  { skip: !root && 'needs root for ip netns' }, async () => {
    const promptMarker = 'PROMPT-MARKER-e2e-4c1d9f';
    const completionMarker = 'COMPLETION-MARKER-e2e-77ab01';
    const before = readFileSync(record).length;
    const req = { model: 'm', messages: [{ role: 'user', content: promptMarker }],
      mock: { prefix: completionMarker, tokens: 5 } };
    const body = JSON.stringify(req);
    const r = await postJSON(`${api}/chat/completions`, body);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, `${completionMarker}${expectedTokens(5)}`);
    const s = await readStream(await fetch(`${api}/chat/completions`, {
      method: 'POST', body: JSON.stringify({ ...req, stream: true }),
    }));
    assert.ok(s.text.includes(completionMarker));
    const rec = readFileSync(record);
    assert.ok(rec.length - before > 1024, 'the relay forwarded the exchange');
    assert.equal(rec.indexOf(promptMarker), -1, 'prompt marker found at the relay');
    assert.equal(rec.indexOf(completionMarker), -1, 'completion marker found at the relay');
    assert.equal(rec.indexOf('"model":"m"'), -1, 'the model name is not in cleartext');
    assert.ok(rec.includes(Buffer.from([0xe1, 0x02])), 'sealed envelopes (0xE1, version 2 by default) went through');

    // Control: the same exchange from a node without E2E is visible at the
    // relay, so the recorder does see what it forwards.
    const old = await startNode(['--listen-all', '--insecure-no-auth', '--bind', '10.231.1.1', '--no-e2e',
      '--join', relay.token,
      '--gossip-interval', '500'], { netns: `${P}C`, cmd: 'client' });
    const oldApi = `http://10.231.0.2:${old.apiPort}/v1`;
    await waitFor(async () => (await (await fetch(`${oldApi}/models`)).json()).data.some((m) => m.id === 'm'),
      { what: 'old client gossip', timeoutMs: 20000 });
    const plainMarker = 'PLAINTEXT-CONTROL-5e2b';
    const c = await postJSON(`${oldApi}/chat/completions`, JSON.stringify({
      model: 'm', messages: [{ role: 'user', content: plainMarker }] }));
    assert.equal(c.status, 200, c.text);
    assert.notEqual(readFileSync(record).indexOf(plainMarker), -1, 'control: plaintext is visible');
  });
