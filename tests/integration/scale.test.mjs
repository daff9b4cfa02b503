// Streams at scale through one mesh hop: more concurrent streams than the
// old 256-per-link cap, and the explicit stream queue (--link-streams,
// --queue-timeout): a request that waits past its deadline gets 503 +
// Retry-After, the node keeps serving, /metrics shows the queue.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  chatBody, expectedTokens, postJSON, readStream, sleep, sseContent, startMock, startNode,
  stopAll, waitFor, TEST_SEALMESH,
} from './lib.mjs';

after(stopAll);

const fast = ['--gossip-interval', '500'];
const routes = async (node, model) => {
  const r = await fetch(`${node.api}/models`);
  return (await r.json()).data.some((m) => m.id === model);
};
const metric = async (node, name) => {
  const m = (await node.metrics()).match(new RegExp(`^${name} ([0-9.e+]+)`, 'm'));
  return m ? Number(m[1]) : NaN;
};
// A streamed chat request; resolves to { status, text } once it ended.
const streamChat = async (node, tokens, delayMs) => {
  const res = await fetch(`${node.api}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: chatBody('m', { stream: true, mock: { tokens, delay_ms: delayMs } }),
  });
  if (res.status !== 200) return { status: res.status, text: await res.text(), headers: res.headers };
  const { text } = await readStream(res);
  return { status: 200, text, headers: res.headers };
};

describe('many streams through one hop', () => {
  test('600 concurrent streams (old cap: 256 per link) all complete, really at once', async () => {
    const N = 600;
    const mock = await startMock(['--tokens', '4']);
    const host = await startNode(['--model', `m=${mock.url}`, ...fast]);
    const client = await startNode(['--join', host.token, ...fast], { cmd: 'client' });
    await waitFor(() => routes(client, 'm'), { what: 'the client routes m', timeoutMs: 20000 });
    // 8 tokens 1 s apart: every stream lasts >= 8 s, so all overlap (also
    // under the sanitizers' slower ramp).
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: N }, () => streamChat(client, 8, 1000)));
    const wall = Date.now() - t0;
    const bad = results.filter((r) => r.status !== 200);
    assert.equal(bad.length, 0, `non-200: ${bad.slice(0, 3).map((r) => `${r.status} ${r.text}`)}`);
    for (const r of results) {
      assert.equal(sseContent(r.text), expectedTokens(8));
      assert.match(r.text, /data: \[DONE\]/);
    }
    const st = await mock.stats();
    // The host's backend had (nearly) all of them open at once: with 256
    // per link the peak would be <= 256 and the run >= 3 waves long.
    assert.ok(st.peak_active > 256, `peak concurrency at the backend: ${st.peak_active}`);
    assert.ok(st.peak_active >= N * 0.9, `peak concurrency at the backend: ${st.peak_active}`);
    assert.equal(await metric(client, 'sealmesh_link_queue_timeouts_total'), 0);
    assert.equal(await metric(client, 'sealmesh_link_streams_queued'), 0);
    console.log(`# ${N} streams through one hop: ${wall} ms, backend peak ${st.peak_active}`);
    await client.stop();
    await host.stop();
    await mock.stop();
  });
});

describe('the backend connection pool follows the load', () => {
  test('after 150 concurrent requests, the next 150 reuse every connection (old pool: 64)', async () => {
    const N = 150;
    const mock = await startMock(['--tokens', '4']);
    const node = await startNode(['--model', `m=${mock.url}`]);
    const wave = async () => {
      const rs = await Promise.all(Array.from({ length: N }, () => streamChat(node, 3, 300)));
      for (const r of rs) assert.equal(r.status, 200, r.text);
      return (await mock.stats()).peak_active;
    };
    assert.ok(await wave() >= N * 0.9, 'the first wave overlapped');
    const c1 = (await mock.stats()).connections;
    await wave();
    const c2 = (await mock.stats()).connections;
    // Only /mock/stats itself may have connected anew.
    assert.ok(c2 - c1 <= 5, `new backend connections in the second wave: ${c2 - c1}`);
    await node.stop();
    await mock.stop();
  });
});

describe('idle backend connections close after the idle timeout', () => {
  test('a wave after the timeout connects anew; one right after reuses (test build, 500 ms)', async () => {
    const N = 20;
    const mock = await startMock(['--tokens', '4']);
    const node = await startNode(['--model', `m=${mock.url}`, '--test-pool-idle-ms', '500'],
      { bin: TEST_SEALMESH });
    const wave = async () => {
      const before = (await mock.stats()).connections;
      const rs = await Promise.all(Array.from({ length: N }, () => streamChat(node, 3, 100)));
      for (const r of rs) assert.equal(r.status, 200, r.text);
      return (await mock.stats()).connections - before - 1; // less our stats call
    };
    assert.ok(await wave() >= N - 1, 'the first wave connects');
    assert.ok(await wave() <= 2, 'right after, the pool serves the wave');
    await sleep(1500); // > 500 ms idle + one sweep period
    assert.ok(await wave() >= N - 1, 'after the idle timeout the pool is empty again');
    await node.stop();
    await mock.stop();
  });
});

describe('the stream queue', () => {
  let mock; let host;

  test('setup: a host that allows 2 streams per link', async () => {
    mock = await startMock(['--tokens', '4']);
    host = await startNode(['--model', `m=${mock.url}`, '--link-streams', '2', ...fast]);
  });

  test('streams beyond the peer\'s limit wait in the queue and then run', async () => {
    const client = await startNode(['--join', host.token, ...fast], { cmd: 'client' });
    await waitFor(() => routes(client, 'm'), { what: 'the client routes m', timeoutMs: 20000 });
    const before = (await mock.stats()).peak_active;
    const all = Array.from({ length: 4 }, () => streamChat(client, 4, 250));
    // Two run, two wait: the gauge shows them.
    await waitFor(async () => (await metric(client, 'sealmesh_link_streams_queued')) === 2,
      { what: 'two streams queued', timeoutMs: 5000, intervalMs: 20 });
    const results = await Promise.all(all);
    for (const r of results) {
      assert.equal(r.status, 200, r.text);
      assert.equal(sseContent(r.text), expectedTokens(4));
    }
    const st = await mock.stats();
    assert.equal(Math.max(before, st.peak_active), 2, 'never more than 2 at the host\'s backend');
    assert.equal(await metric(client, 'sealmesh_link_streams_queued'), 0);
    assert.equal(await metric(client, 'sealmesh_link_queue_seconds_count'), 2);
    assert.ok(await metric(client, 'sealmesh_link_queue_seconds_sum') >= 0.5,
      'the queued ones waited about one stream\'s length');
    const text = await client.metrics();
    assert.match(text, /^# TYPE sealmesh_link_queue_seconds histogram$/m);
    assert.match(text, /^sealmesh_link_queue_seconds_bucket\{le="\+Inf"\} 2$/m);
    await client.stop();
  });

  test('a request still queued at --queue-timeout gets 503 + Retry-After; the node keeps serving', async () => {
    const client = await startNode(['--join', host.token, '--queue-timeout', '300', ...fast],
      { cmd: 'client' });
    await waitFor(() => routes(client, 'm'), { what: 'the client routes m', timeoutMs: 20000 });
    // Fill both slots for ~2 s.
    const long = [streamChat(client, 8, 250), streamChat(client, 8, 250)];
    await waitFor(async () => (await mock.stats()).active === 2, { what: 'two streams at the host' });
    const t0 = Date.now();
    const r = await postJSON(`${client.api}/chat/completions`, chatBody('m', { stream: true }));
    const waited = Date.now() - t0;
    assert.equal(r.status, 503, r.text);
    assert.equal(r.headers.get('retry-after'), '1');
    assert.equal(r.json?.error?.type, 'server_error');
    assert.equal(r.json?.error?.code, 'mesh_busy');
    assert.ok(typeof r.json.error.message === 'string' && r.json.error.message.length > 0);
    assert.ok(waited >= 250, `answered after the deadline, not at once (${waited} ms)`);
    assert.equal(await metric(client, 'sealmesh_link_queue_timeouts_total'), 1);
    assert.equal(await metric(client, 'sealmesh_link_streams_queued'), 0);
    // The long streams were not disturbed, and once they end the node serves.
    for (const x of await Promise.all(long)) {
      assert.equal(x.status, 200);
      assert.equal(sseContent(x.text), expectedTokens(8));
    }
    const ok = await postJSON(`${client.api}/chat/completions`, chatBody('m'));
    assert.equal(ok.status, 200, ok.text);
    await client.stop();
  });

  test('a full queue (--queue-max) answers 503 at once', async () => {
    const client = await startNode(['--join', host.token, '--queue-max', '1', ...fast],
      { cmd: 'client' });
    await waitFor(() => routes(client, 'm'), { what: 'the client routes m', timeoutMs: 20000 });
    const long = [streamChat(client, 6, 250), streamChat(client, 6, 250)];
    await waitFor(async () => (await mock.stats()).active === 2, { what: 'two streams at the host' });
    const waiting = streamChat(client, 1, 0); // waits in the queue (1 slot)
    await waitFor(async () => (await metric(client, 'sealmesh_link_streams_queued')) === 1,
      { what: 'one queued', intervalMs: 20 });
    const t0 = Date.now();
    const r = await postJSON(`${client.api}/chat/completions`, chatBody('m'));
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json?.error?.code, 'mesh_busy');
    assert.equal(r.headers.get('retry-after'), '1');
    assert.ok(Date.now() - t0 < 1000, 'refused at once, not after a wait');
    assert.equal(await metric(client, 'sealmesh_link_queue_full_total'), 1);
    for (const x of [...await Promise.all(long), await waiting]) assert.equal(x.status, 200, x.text);
    await client.stop();
  });

  test('teardown', async () => {
    await host.stop();
    await mock.stop();
  });
});

describe('the stream queue of a relay', () => {
  test('a relay whose link to the host is full answers "busy" at its deadline: the client gets 503', async () => {
    const mock = await startMock(['--tokens', '4']);
    const relay = await startNode(['--queue-timeout', '300', ...fast]);
    // The host cannot be dialed (it advertises port 9) and allows 2 streams.
    const host = await startNode(['--model', `m=${mock.url}`, '--advertise', '127.0.0.1:9',
      '--join', relay.token, '--link-streams', '2', ...fast]);
    const client = await startNode(['--join', relay.token, ...fast], { cmd: 'client' });
    await waitFor(() => routes(client, 'm'), { what: 'the client routes m via the relay', timeoutMs: 20000 });
    const long = [streamChat(client, 8, 250), streamChat(client, 8, 250)];
    await waitFor(async () => (await mock.stats()).active === 2, { what: 'two streams at the host' });
    const r = await postJSON(`${client.api}/chat/completions`, chatBody('m', { stream: true }));
    assert.equal(r.status, 503, r.text);
    assert.equal(r.headers.get('retry-after'), '1');
    assert.equal(r.json?.error?.code, 'mesh_busy');
    assert.equal(await metric(relay, 'sealmesh_link_queue_timeouts_total'), 1);
    assert.equal(await metric(client, 'sealmesh_link_queue_timeouts_total'), 0);
    for (const x of await Promise.all(long)) assert.equal(x.status, 200);
    const ok = await postJSON(`${client.api}/chat/completions`, chatBody('m'));
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await client.status()).peers.find((p) => p.models.includes('m')).link, 'relay');
    await client.stop();
    await host.stop();
    await relay.stop();
    await mock.stop();
  });
});
