// Response shaping on loopback: negotiation (and mixed versions), the
// knobs, /api/status, answers that fail half-way. What an observer learns is
// measured in shape_netns.test.mjs.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  chatBody, expectedTokens, postJSON, readStream, sseContent, startMock,
  startNode, startProcess, stopAll, waitFor, SEALMESH, TEST_SEALMESH,
} from './lib.mjs';

after(stopAll);

const fast = ['--gossip-interval', '300'];
const hostPeer = async (node) => (await node.status()).peers.find((p) => p.models.includes('m'));
const routable = async (node) =>
  (await (await fetch(`${node.api}/models`)).json()).data.some((m) => m.id === 'm');
const stream = async (node, mock) => readStream(await fetch(`${node.api}/chat/completions`, {
  method: 'POST', body: chatBody('m', { stream: true, mock }),
}));

describe('shaped answers by default', () => {
  test('a new client asks, a new host answers padded and paced; content and liveness unchanged', async () => {
    const mock = await startMock(['--tokens', '5']);
    const host = await startNode(['--model', `m=${mock.url}`, ...fast]);
    const client = await startNode(['--join', host.token, ...fast], { cmd: 'client' });
    await waitFor(async () => (await hostPeer(client))?.response_shaping === true && routable(client),
      { what: 'shaping announced' });
    const st = (await host.status()).shaping;
    assert.deepEqual({ ask: st.ask, answer: st.answer, pacing_ms: st.pacing_ms, bucket: st.bucket },
      { ask: true, answer: true, pacing_ms: 30, bucket: 1024 });
    const s = await stream(client, { tokens: 20, delay_ms: 60 });
    assert.equal(sseContent(s.text), expectedTokens(20));
    assert.ok(s.chunks.length >= 8, `SSE tokens arrive live (${s.chunks.length} reads)`);
    const r = await postJSON(`${client.api}/chat/completions`, chatBody('m'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, expectedTokens(5));
    const after1 = (await host.status()).shaping;
    assert.equal(after1.streams - st.streams, 2);
    assert.ok(after1.padding_frames > 0, 'ticks without a token sent padding frames');
    assert.equal(after1.active_streams, 0);
    // Every frame is one bucket: wire bytes = frames x (4 + 17 + 1024).
    assert.equal(after1.wire_bytes, after1.frames * (4 + 17 + 1024));
  });

  test('a large answer grows the bucket and arrives whole', async () => {
    const mock = await startMock([]);
    const host = await startNode(['--model', `m=${mock.url}`, ...fast]);
    const client = await startNode(['--join', host.token, ...fast], { cmd: 'client' });
    await waitFor(async () => (await hostPeer(client))?.response_shaping === true && routable(client),
      { what: 'shaping announced' });
    const r = await postJSON(`${client.api}/chat/completions`, chatBody('m', { mock: { tokens: 30000 } }));
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, expectedTokens(30000));
    const st = (await host.status()).shaping;
    assert.ok(st.data_bytes > 200000);
    // Far fewer frames than 1 KiB ones would need: the bucket grew.
    assert.ok(st.frames < st.data_bytes / 4096, JSON.stringify(st));
    const s = await stream(client, { tokens: 3000, delay_ms: 0 });
    assert.equal(sseContent(s.text), expectedTokens(3000));
  });

  test('a backend that fails half-way: the client gets the authenticated error, in a frame like the rest', async () => {
    const mock = await startMock([]);
    const host = await startNode(['--model', `m=${mock.url}`, ...fast]);
    const client = await startNode(['--join', host.token, ...fast], { cmd: 'client' });
    await waitFor(async () => (await hostPeer(client))?.response_shaping === true && routable(client),
      { what: 'shaping announced' });
    const before = (await host.status()).shaping;
    const s = await stream(client, { tokens: 10, delay_ms: 20, fail: 'drop', drop_after: 3 });
    assert.ok(s.text.includes('tok2'), s.text);
    assert.ok(!s.text.includes('tok3'), s.text);
    assert.ok(!s.text.endsWith('data: [DONE]\n\n'), 'the client is not told the answer was complete');
    await waitFor(async () => (await host.status()).shaping.active_streams === 0, { what: 'stream closed' });
    const st = (await host.status()).shaping;
    assert.equal(st.streams - before.streams, 1);
    assert.equal(st.wire_bytes, st.frames * (4 + 17 + 1024));
    assert.equal((await client.metrics()).match(/^sealmesh_e2e_decrypt_failures_total (\d+)/m)[1], '0');
  });

  test('knobs: --response-pacing 0 pads only, --response-bucket sets the frame, bad values are refused', async () => {
    const mock = await startMock(['--tokens', '4']);
    const host = await startNode(['--model', `m=${mock.url}`, '--response-pacing', '0',
      '--response-bucket', '256', ...fast]);
    const client = await startNode(['--join', host.token, ...fast], { cmd: 'client' });
    await waitFor(async () => (await hostPeer(client))?.response_shaping === true && routable(client),
      { what: 'shaping announced' });
    const s = await stream(client, { tokens: 6, delay_ms: 5 });
    assert.equal(sseContent(s.text), expectedTokens(6));
    const st = (await host.status()).shaping;
    assert.equal(st.pacing_ms, 0);
    assert.equal(st.bucket, 256);
    assert.equal(st.padding_frames, 0, 'no clock, no padding frames');
    assert.ok(st.frames >= 7);
    for (const [flag, val] of [['--response-bucket', '300'], ['--response-bucket', '131072'],
      ['--response-pacing', '5000'], ['--response-pacing', 'x']]) {
      const p = startProcess(SEALMESH, ['client', '--port', '0', '--console', '0', flag, val], /never/);
      await assert.rejects(p, new RegExp(flag));
    }
  });
});

describe('mixed versions', () => {
  test('a new client and a host from before v2: no flag sent, plain v1 answer', async () => {
    const mock = await startMock(['--tokens', '4']);
    const old = await startNode(['--model', `m=${mock.url}`, '--test-old-rstream', ...fast],
      { bin: TEST_SEALMESH });
    const client = await startNode(['--join', old.token, ...fast], { cmd: 'client' });
    await waitFor(() => routable(client), { what: 'gossip' });
    assert.equal((await hostPeer(client)).response_shaping, false);
    assert.equal((await old.status()).shaping.answer, false);
    const s = await stream(client, { tokens: 12, delay_ms: 10 });
    assert.equal(sseContent(s.text), expectedTokens(12));
    const r = await postJSON(`${client.api}/chat/completions`, chatBody('m'));
    assert.equal(r.status, 200, r.text);
    assert.equal(await metric(old, 'sealmesh_e2e_decrypt_failures_total'), 0, 'the old host refused nothing');
  });

  test('an old client and --no-shaping clients get v1 answers from a new host', async () => {
    const mock = await startMock(['--tokens', '4']);
    const host = await startNode(['--model', `m=${mock.url}`, ...fast]);
    const old = await startNode(['--join', host.token, '--test-old-rstream', ...fast],
      { cmd: 'client', bin: TEST_SEALMESH });
    const noshape = await startNode(['--join', host.token, '--no-shaping', ...fast], { cmd: 'client' });
    for (const c of [old, noshape]) await waitFor(() => routable(c), { what: 'gossip' });
    assert.equal((await noshape.status()).shaping.ask, false);
    const before = (await host.status()).shaping.streams;
    for (const c of [old, noshape]) {
      const s = await stream(c, { tokens: 12, delay_ms: 10 });
      assert.equal(sseContent(s.text), expectedTokens(12));
    }
    assert.equal((await host.status()).shaping.streams, before, 'nothing shaped');
    assert.equal(await metric(host, 'sealmesh_e2e_opened_total'), 2);
  });
});

async function metric(node, name) {
  const m = (await node.metrics()).match(new RegExp(`^${name} (\\d+)`, 'm'));
  return m ? Number(m[1]) : NaN;
}
