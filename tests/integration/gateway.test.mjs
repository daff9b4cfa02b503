// The local gateway in front of the mock backend: real processes on loopback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, statSync } from 'node:fs';
import path from 'node:path';

import {
  chatBody, expectedTokens, normalize, postJSON, rawConnect, readStream,
  readUntil, sleep, sseContent, startMock, startNode, stopAll, tmpdir, waitFor,
  SEALMESH,
  freePort,
} from './lib.mjs';
import { spawnSync } from 'node:child_process';

let mock;
let node;

before(async () => {
  mock = await startMock(['--tokens', '8']);
  node = await startNode(['--model', `m=${mock.url}`,
    '--model', 'dead=http://127.0.0.1:1']);
});
after(stopAll);

describe('OpenAI routes', () => {
  test('GET /v1/models lists every routable model in OpenAI shape', async () => {
    const res = await fetch(`${node.api}/models`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.object, 'list');
    assert.deepEqual(body.data.map((m) => m.id).sort(), ['dead', 'm']);
    for (const m of body.data) assert.equal(m.object, 'model');
    const one = await fetch(`${node.api}/models/m`);
    assert.equal((await one.json()).id, 'm');
    assert.equal((await fetch(`${node.api}/models/nope`)).status, 404);
  });

  test('non-streaming chat is relayed byte for byte', async () => {
    const body = chatBody('m', { mock: { tokens: 5 } });
    const direct = await postJSON(`${mock.url}/v1/chat/completions`, body);
    const via = await postJSON(`${node.api}/chat/completions`, body);
    assert.equal(via.status, 200);
    assert.equal(normalize(via.text), normalize(direct.text));
    assert.equal(via.json.choices[0].message.content, expectedTokens(5));
  });

  test('streaming chat is relayed byte for byte and live', async () => {
    const body = chatBody('m', { stream: true, mock: { tokens: 6, delay_ms: 150 } });
    const t0 = performance.now();
    const res = await fetch(`${node.api}/chat/completions`, { method: 'POST', body });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    const { text, chunks } = await readStream(res);
    const total = performance.now() - t0;
    assert.equal(sseContent(text), expectedTokens(6));
    assert.ok(text.endsWith('data: [DONE]\n\n'));
    // Tokens arrive as they are produced, not all at the end.
    assert.ok(chunks.length >= 4, `only ${chunks.length} reads`);
    assert.ok(chunks[0].at - t0 < total - 400,
      `first byte at ${chunks[0].at - t0} ms of ${total} ms`);
    const direct = await fetch(`${mock.url}/v1/chat/completions`, { method: 'POST', body });
    assert.equal(normalize(text), normalize((await readStream(direct)).text));
  });

  for (const [p, extra] of [['/completions', { prompt: 'hi' }],
    ['/responses', { input: 'hi' }], ['/embeddings', { input: 'hi' }]]) {
    test(`POST /v1${p} is forwarded (stream and not)`, async () => {
      const body = JSON.stringify({ model: 'm', ...extra });
      const direct = await postJSON(`${mock.url}/v1${p}`, body);
      const via = await postJSON(`${node.api}${p}`, body);
      assert.equal(via.status, 200);
      assert.equal(normalize(via.text), normalize(direct.text));
      if (p === '/embeddings') return;
      const sbody = JSON.stringify({ model: 'm', stream: true, ...extra });
      const a = await readStream(await fetch(`${node.api}${p}`, { method: 'POST', body: sbody }));
      const b = await readStream(await fetch(`${mock.url}/v1${p}`, { method: 'POST', body: sbody }));
      assert.equal(normalize(a.text), normalize(b.text));
    });
  }
});

describe('errors are OpenAI-shaped with the right status', () => {
  const shaped = (r) => {
    assert.equal(typeof r.json?.error?.message, 'string', r.text);
    assert.equal(typeof r.json.error.type, 'string');
    assert.ok('code' in r.json.error);
  };

  test('malformed JSON is 400', async () => {
    const r = await postJSON(`${node.api}/chat/completions`, '{"model": "m",');
    assert.equal(r.status, 400);
    shaped(r);
  });
  test('missing model is 400', async () => {
    const r = await postJSON(`${node.api}/chat/completions`, { messages: [] });
    assert.equal(r.status, 400);
    shaped(r);
    assert.equal(r.json.error.code, 'missing_model');
  });
  test('unknown model is 404', async () => {
    const r = await postJSON(`${node.api}/chat/completions`, chatBody('nope'));
    assert.equal(r.status, 404);
    shaped(r);
    assert.equal(r.json.error.code, 'model_not_found');
  });
  test('unreachable backend is 502', async () => {
    const r = await postJSON(`${node.api}/chat/completions`, chatBody('dead'));
    assert.equal(r.status, 502);
    shaped(r);
  });
  test('unknown path is 404 and wrong method 405', async () => {
    const r = await postJSON(`${node.api}/nothing`, '{}');
    assert.equal(r.status, 404);
    shaped(r);
    const g = await fetch(`${node.api}/chat/completions`);
    assert.equal(g.status, 405);
  });
  test('body over the limit is 413, and the node keeps serving', async () => {
    const small = await startNode(['--model', `m=${mock.url}`, '--max-body', '4096']);
    const r = await postJSON(`${small.api}/chat/completions`,
      chatBody('m', { pad: 'x'.repeat(8192) }));
    assert.equal(r.status, 413);
    shaped(r);
    const ok = await postJSON(`${small.api}/chat/completions`, chatBody('m'));
    assert.equal(ok.status, 200);
    // Chunked upload over the limit too.
    const sock = await rawConnect(small.apiPort);
    sock.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n'
      + 'Transfer-Encoding: chunked\r\n\r\n');
    for (let i = 0; i < 4; i++) sock.write(`800\r\n${'y'.repeat(0x800)}\r\n`);
    const resp = await readUntil(sock, (s) => s.includes('}}'));
    assert.match(resp, /^HTTP\/1\.1 413 /);
    sock.destroy();
    await small.stop();
  });
  test('backend timeout is 504', async () => {
    const slow = await startNode(['--model', `m=${mock.url}`, '--backend-timeout', '1']);
    const r = await postJSON(`${slow.api}/chat/completions`, chatBody('m', { mock: { fail: 'hang' } }));
    assert.equal(r.status, 504);
    shaped(r);
    await slow.stop();
  });
  test('backend 500 is relayed as is', async () => {
    const r = await postJSON(`${node.api}/chat/completions`, chatBody('m', { mock: { fail: '500' } }));
    assert.equal(r.status, 500);
    shaped(r);
  });
});

describe('HTTP/1.1 behaviour', () => {
  test('keep-alive: several requests on one connection, and pipelining', async () => {
    const sock = await rawConnect(node.apiPort);
    const b = chatBody('m', { mock: { tokens: 2 } });
    const req = `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\n\r\n${b}`;
    sock.write(req);
    const one = await readUntil(sock, (s) => s.includes('"usage"') && s.endsWith('}'));
    assert.match(one, /^HTTP\/1\.1 200 /);
    sock.write(req + req); // pipelined
    const two = await readUntil(sock, (s) => (s.match(/"usage"/g) || []).length === 2 && s.endsWith('}'));
    assert.equal((two.match(/HTTP\/1\.1 200 /g) || []).length, 2);
    sock.destroy();
  });

  test('chunked request bodies and Expect: 100-continue work', async () => {
    const sock = await rawConnect(node.apiPort);
    const b = chatBody('m', { mock: { tokens: 3 } });
    sock.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n'
      + 'Transfer-Encoding: chunked\r\n\r\n');
    const cont = await readUntil(sock, (s) => s.includes('\r\n\r\n'));
    assert.match(cont, /^HTTP\/1\.1 100 Continue/);
    const half = Math.floor(b.length / 2);
    sock.write(`${half.toString(16)}\r\n${b.slice(0, half)}\r\n`);
    await sleep(50);
    sock.write(`${(b.length - half).toString(16)}\r\n${b.slice(half)}\r\n0\r\n\r\n`);
    const resp = await readUntil(sock, (s) => s.includes('"usage"') && s.endsWith('}'));
    assert.match(resp, /^HTTP\/1\.1 200 /);
    assert.ok(resp.includes(expectedTokens(3)));
    sock.destroy();
  });

  test('headers over the cap are refused with 431', async () => {
    const sock = await rawConnect(node.apiPort);
    sock.write(`GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(40000)}\r\n\r\n`);
    const resp = await readUntil(sock, (s) => s.includes('}}'));
    assert.match(resp, /^HTTP\/1\.1 431 /);
    sock.destroy();
  });

  test('garbage is a 400 and the node keeps serving', async () => {
    const sock = await rawConnect(node.apiPort);
    sock.write('NOT HTTP AT ALL\r\n\r\n');
    const resp = await readUntil(sock, (s) => s.includes('}}'));
    assert.match(resp, /^HTTP\/1\.1 400 /);
    sock.destroy();
    assert.equal((await fetch(`${node.api}/models`)).status, 200);
  });
});

describe('streams under failure', () => {
  test('a client that disconnects mid-stream cancels the backend request', async () => {
    const before = await mock.stats();
    const ctl = new AbortController();
    const res = await fetch(`${node.api}/chat/completions`, {
      method: 'POST', signal: ctl.signal,
      body: chatBody('m', { stream: true, mock: { tokens: 200, delay_ms: 50 } }),
    });
    const reader = res.body.getReader();
    await reader.read();
    ctl.abort();
    const st = await waitFor(async () => {
      const s = await mock.stats();
      return s.cancelled > before.cancelled && s;
    }, { what: 'backend cancel' });
    assert.equal(st.active, 0);
  });

  test('a backend dying mid-stream gives the client a clean error; the node keeps serving', async () => {
    const res = await fetch(`${node.api}/chat/completions`, {
      method: 'POST',
      body: chatBody('m', { stream: true, mock: { tokens: 10, fail: 'drop', drop_after: 3 } }),
    });
    assert.equal(res.status, 200);
    const { text } = await readStream(res); // ends, does not hang
    assert.ok(text.includes('tok2 '));
    assert.match(text, /data: \{"error":\{[^\n]*"code":"upstream_stream_cut"/);
    assert.ok(!text.includes('[DONE]'));
    const ok = await postJSON(`${node.api}/chat/completions`, chatBody('m'));
    assert.equal(ok.status, 200);
  });

  test('a non-streaming response cut by the backend is not completed', async () => {
    await assert.rejects(async () => {
      const res = await fetch(`${node.api}/chat/completions`, {
        method: 'POST', body: chatBody('m', { mock: { fail: 'drop' } }),
      });
      await res.text();
    });
  });

  test('200 concurrent streams all complete with the right content', async () => {
    const n = 200;
    const body = chatBody('m', { stream: true, mock: { tokens: 20, delay_ms: 20 } });
    const results = await Promise.all(Array.from({ length: n }, async () => {
      const res = await fetch(`${node.api}/chat/completions`, { method: 'POST', body });
      return sseContent((await readStream(res)).text);
    }));
    for (const r of results) assert.equal(r, expectedTokens(20));
  });

  test('a slow client does not make the node buffer without bound', async () => {
    const sock = await rawConnect(node.apiPort);
    const b = chatBody('m', { stream: true, mock: { tokens: 300000, delay_ms: 0 } });
    const rss0 = node.rss();
    sock.pause(); // read nothing
    sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${b.length}\r\n\r\n${b}`);
    await sleep(2500);
    const grown = node.rss() - rss0;
    // The stream is ~60 MB; with backpressure the node holds a small window.
    assert.ok(grown < 16 * 1024 * 1024, `node RSS grew by ${grown} bytes`);
    sock.destroy();
    await waitFor(async () => (await mock.stats()).active === 0, { what: 'stream cancel' });
  });
});

describe('console, logs and identity', () => {
  test('/api/status and /metrics', async () => {
    const st = await node.status();
    assert.match(st.node_id, /^[0-9a-f]{64}$/);
    assert.deepEqual(st.peers, []);
    assert.equal(st.api_port, node.apiPort);
    assert.ok(st.models.includes('m'));
    assert.equal(typeof st.uptime, 'number');
    assert.equal(typeof st.inflight, 'number');
    const m = await node.metrics();
    assert.match(m, /sealmesh_requests_total\{model="m",status="200"\} \d+/);
    assert.match(m, /sealmesh_ttft_seconds_bucket\{le="\+Inf"\} \d+/);
    assert.match(m, /sealmesh_active_streams 0/);
  });

  test('logs carry one line per request and never the prompt or completion', async () => {
    const marker = 'PROMPT-MARKER-7f3a9c';
    await postJSON(`${node.api}/chat/completions`, JSON.stringify({
      model: 'm', messages: [{ role: 'user', content: marker }], mock: { prefix: 'COMPLETION-MARKER-2b8e' },
    }));
    await sleep(100);
    assert.ok(!node.stderr.includes(marker));
    assert.ok(!node.stderr.includes('COMPLETION-MARKER-2b8e'));
    assert.match(node.stderr, /POST \/v1\/chat\/completions model=m route=local status=200/);
  });

  test('json log format', async () => {
    const j = await startNode(['--model', `m=${mock.url}`, '--log-format', 'json']);
    await postJSON(`${j.api}/chat/completions`, chatBody('m'));
    await sleep(100);
    const line = j.stderr.split('\n').find((l) => l.includes('"msg":"request"'));
    const rec = JSON.parse(line);
    assert.equal(rec.status, 200);
    assert.equal(rec.model, 'm');
    assert.equal(rec.path, '/v1/chat/completions');
    await j.stop();
  });

  test('identity key is 0600 in a 0700 dir and a readable key is refused', async () => {
    const st = statSync(path.join(node.stateDir, 'identity.key'));
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(statSync(node.stateDir).mode & 0o777, 0o700);
    const dir = tmpdir('sm-key-');
    const kg = spawnSync(SEALMESH, ['keygen', '--state-dir', dir], { encoding: 'utf8' });
    assert.equal(kg.status, 0);
    assert.match(kg.stdout, /^[0-9a-f]{64}\n$/);
    chmodSync(path.join(dir, 'identity.key'), 0o644);
    const r = spawnSync(SEALMESH, ['serve', '--state-dir', dir, '--port', '0', '--console', '0'],
      { encoding: 'utf8', timeout: 10000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /accessible by others/);
  });

  test('the node id is stable across restarts', async () => {
    const dir = tmpdir('sm-id-');
    const a = await startNode([], { stateDir: dir });
    const ida = (await a.status()).node_id;
    await a.stop();
    const b = await startNode([], { stateDir: dir });
    assert.equal((await b.status()).node_id, ida);
    await b.stop();
  });
});

describe('backend connection pool', () => {
  test('a backend restart does not break requests on pooled connections', async () => {
    const port = await freePort();
    let b = await startMock(['--port', String(port), '--tokens', '2']);
    const n = await startNode(['--model', `m=http://127.0.0.1:${port}`]);
    assert.equal((await postJSON(`${n.api}/chat/completions`, chatBody('m'))).status, 200);
    assert.equal((await postJSON(`${n.api}/chat/completions`, chatBody('m'))).status, 200);
    assert.equal((await b.stats()).requests, 2);
    // The backend restarts: the idle connection in the pool is now dead.
    await b.stop();
    b = await startMock(['--port', String(port), '--tokens', '2']);
    const r = await postJSON(`${n.api}/chat/completions`, chatBody('m'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, expectedTokens(2));
    await n.stop();
  });
});
