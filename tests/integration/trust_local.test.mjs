// The local endpoint (issue 9, part 1 and 4): no web page and no LAN
// neighbour uses a node without the operator's say-so. Host and Origin
// allowlists (DNS rebinding), CORS only for --allow-origin, API keys,
// --listen-all rules, the join secret off the console, x-request-id and
// x-should-retry, and flag pairs that weaken each other. Real processes on
// loopback; raw node:http requests so that Host can be anything.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  SEALMESH, chatBody, startMock, startNode, stopAll, tmpdir, waitFor, sleep,
} from './lib.mjs';

const fast = ['--gossip-interval', '300'];
const KEY1 = 'sk-local-one-0123456789abcdef';
const KEY2 = 'sk-local-two-0123456789abcdef';
const KEY3 = 'sk-local-three-0123456789abcdef';
const APP = 'http://app.example:5173';

// One request over its own connection; 'host' null sends no Host header.
function hreq(port, { method = 'GET', path: p = '/', headers = {}, body, host, addr = '127.0.0.1' } = {}) {
  const h = { ...headers };
  if (host !== null) h.Host = host ?? `127.0.0.1:${port}`;
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    h['Content-Length'] = Buffer.byteLength(body);
  }
  return new Promise((resolve, reject) => {
    const r = http.request({ host: addr, port, method, path: p, headers: h, setHost: false, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    r.on('error', reject);
    r.end(body);
  });
}

const chat = (port, opts = {}) => hreq(port, { method: 'POST', path: '/v1/chat/completions',
  body: chatBody('m'), ...opts });

// A refusal in OpenAI's shape that no retry can fix.
function assertRefused(r, status, code) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.error?.code, code, r.text);
  assert.equal(r.json.error.type, 'invalid_request_error');
  assert.equal(typeof r.json.error.message, 'string');
  assert.equal(r.headers['x-should-retry'], 'false');
  assert.match(r.headers['x-request-id'], /^[0-9a-f]{16}$/);
  assert.equal(r.headers['access-control-allow-origin'], undefined);
}

function keyFile(keys, mode = 0o600) {
  const f = path.join(tmpdir('sm-keys-'), 'api.keys');
  writeFileSync(f, `# API keys\n\n${keys.join('\n')}\n`, { mode });
  chmodSync(f, mode);
  return f;
}

let mock;
let plain; // no keys; --allow-host mesh.lan, --allow-origin APP
let keyed; // --api-key-file
let keys;

before(async () => {
  mock = await startMock(['--tokens', '3']);
  plain = await startNode(['--model', `m=${mock.url}`, '--allow-host', 'mesh.lan',
    '--allow-origin', APP, ...fast]);
  keys = keyFile([KEY1, KEY2]);
  keyed = await startNode(['--model', `m=${mock.url}`, '--api-key-file', keys, ...fast]);
});

after(async () => { await stopAll(); });

describe('DNS rebinding: Host and Origin', () => {
  test('a foreign Host is refused on the API and the console, before routing', async () => {
    const before_ = (await mock.stats()).requests;
    for (const host of ['evil.example', `evil.example:${plain.apiPort}`, `localhost.evil.example:${plain.apiPort}`,
      `127.0.0.1:${plain.apiPort + 1}`, '127.1', '2130706433']) {
      assertRefused(await chat(plain.apiPort, { host }), 403, 'host_not_allowed');
      assertRefused(await hreq(plain.apiPort, { path: '/v1/models', host }), 403, 'host_not_allowed');
    }
    for (const p of ['/api/status', '/metrics', '/health']) {
      const r = await hreq(plain.consolePort, { path: p, host: `evil.example:${plain.consolePort}` });
      assertRefused(r, 403, 'host_not_allowed');
      assert.doesNotMatch(r.text, /node_id|sealmesh_/);
    }
    assert.equal((await mock.stats()).requests, before_, 'nothing reached the backend');
  });

  test('loopback names and addresses are accepted, with or without the port', async () => {
    for (const host of [`127.0.0.1:${plain.apiPort}`, '127.0.0.1', `localhost:${plain.apiPort}`, 'LOCALHOST',
      `127.3.2.1:${plain.apiPort}`, `[::1]:${plain.apiPort}`, '[::1]']) {
      const r = await chat(plain.apiPort, { host });
      assert.equal(r.status, 200, `${host}: ${r.text}`);
    }
    for (const host of [`127.0.0.1:${plain.consolePort}`, `localhost:${plain.consolePort}`, '[::1]']) {
      assert.equal((await hreq(plain.consolePort, { path: '/api/status', host })).status, 200, host);
    }
  });

  test('--allow-host NAME is accepted there and only there', async () => {
    assert.equal((await chat(plain.apiPort, { host: `mesh.lan:${plain.apiPort}` })).status, 200);
    assert.equal((await chat(plain.apiPort, { host: 'MESH.LAN' })).status, 200);
    assertRefused(await chat(keyed.apiPort, { host: 'mesh.lan', headers: { authorization: `Bearer ${KEY1}` } }),
      403, 'host_not_allowed');
  });

  test('HTTP/1.1 without Host is 400; two Host headers are 400', async () => {
    assertRefused(await hreq(plain.apiPort, { path: '/v1/models', host: null }), 400, 'invalid_host');
    const sock = net.connect(plain.apiPort, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write('GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n');
    const got = await new Promise((r) => { let a = ''; sock.on('data', (d) => { a += d; }); sock.on('end', () => r(a)); });
    assert.match(got, /^HTTP\/1\.1 400 /);
    assert.match(got, /"code":"invalid_host"/);
  });

  test('a foreign Origin is refused on the API and the console; same origin is served', async () => {
    const before_ = (await mock.stats()).requests;
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${plain.apiPort + 1}`,
      `https://127.0.0.1:${plain.apiPort}`]) {
      assertRefused(await chat(plain.apiPort, { headers: { origin } }), 403, 'origin_not_allowed');
      assertRefused(await hreq(plain.consolePort, { path: '/api/status', headers: { origin } }),
        403, 'origin_not_allowed');
    }
    // A no-cors request from another site carries no Origin, but says so.
    assertRefused(await hreq(plain.consolePort, { path: '/api/status', headers: { 'sec-fetch-site': 'cross-site' } }),
      403, 'origin_not_allowed');
    assert.equal((await mock.stats()).requests, before_, 'nothing reached the backend');
    // The console page fetching /api/status from its own origin.
    for (const origin of [`http://127.0.0.1:${plain.consolePort}`, `http://localhost:${plain.consolePort}`]) {
      const r = await hreq(plain.consolePort, { path: '/api/status', headers: { origin, 'sec-fetch-site': 'same-origin' } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['access-control-allow-origin'], undefined, 'same origin needs no CORS');
    }
    // ...and calling the API: cross-origin, answered with CORS for it alone.
    const o = `http://127.0.0.1:${plain.consolePort}`;
    const r = await hreq(plain.apiPort, { path: '/v1/models', headers: { origin: o } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], o);
  });
});

describe('CORS', () => {
  test('--allow-origin gets an answered preflight and CORS headers', async () => {
    const pre = await hreq(plain.apiPort, { method: 'OPTIONS', path: '/v1/chat/completions', headers: {
      origin: APP, 'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type, x-stainless-os' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], APP);
    assert.match(pre.headers.vary, /Origin/);
    assert.match(pre.headers['access-control-allow-methods'], /POST/);
    assert.match(pre.headers['access-control-allow-headers'], /authorization/);
    const r = await chat(plain.apiPort, { headers: { origin: APP } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['access-control-allow-origin'], APP);
    assert.match(r.headers.vary, /Origin/);
  });

  test('no other origin gets a preflight, and no answer anywhere is wildcard CORS', async () => {
    for (const node of [plain, keyed]) {
      for (const origin of ['http://evil.example', 'http://app.example:5174']) {
        const pre = await hreq(node.apiPort, { method: 'OPTIONS', path: '/v1/chat/completions',
          headers: { origin, 'access-control-request-method': 'POST' } });
        assertRefused(pre, 403, 'origin_not_allowed');
      }
    }
    // The keyed node was not given --allow-origin: APP is foreign there.
    assertRefused(await hreq(keyed.apiPort, { method: 'OPTIONS', path: '/v1/models',
      headers: { origin: APP, 'access-control-request-method': 'GET' } }), 403, 'origin_not_allowed');
    for (const r of [await chat(plain.apiPort), await hreq(plain.consolePort, { path: '/api/status' }),
      await hreq(plain.apiPort, { path: '/v1/models' })]) {
      assert.equal(r.headers['access-control-allow-origin'], undefined);
    }
  });
});

describe('API keys', () => {
  test('missing or wrong key: 401 invalid_api_key; Bearer or x-api-key: 200', async () => {
    const before_ = (await mock.stats()).requests;
    for (const headers of [{}, { authorization: 'Bearer sk-wrong-0123456789abcdef' },
      { 'x-api-key': 'sk-wrong-0123456789abcdef' }, { authorization: `Basic ${KEY1}` }, { authorization: KEY1 }]) {
      const r = await chat(keyed.apiPort, { headers });
      assertRefused(r, 401, 'invalid_api_key');
      assert.match(r.headers['www-authenticate'], /^Bearer/);
    }
    assert.equal((await mock.stats()).requests, before_, 'nothing reached the backend');
    assert.equal((await chat(keyed.apiPort, { headers: { authorization: `Bearer ${KEY1}` } })).status, 200);
    assert.equal((await chat(keyed.apiPort, { headers: { 'x-api-key': KEY2 } })).status, 200);
    // The key is this node's: it never reaches a backend (or a remote host).
    const last = (await mock.stats()).last_headers;
    assert.equal(last.authorization, undefined);
    assert.equal(last['x-api-key'], undefined);
    assert.equal((await hreq(keyed.apiPort, { path: '/health' })).status, 200, 'health needs no key');
    assertRefused(await hreq(keyed.apiPort, { path: '/v1/models' }), 401, 'invalid_api_key');
  });

  test('the console wants the key too, except its health check', async () => {
    for (const p of ['/api/status', '/metrics']) {
      assertRefused(await hreq(keyed.consolePort, { path: p }), 401, 'invalid_api_key');
      assert.equal((await hreq(keyed.consolePort, { path: p, headers: { 'x-api-key': KEY1 } })).status, 200);
    }
    assert.equal((await hreq(keyed.consolePort, { path: '/health' })).status, 200);
    const st = spawnSync(SEALMESH, ['status', '--console', String(keyed.consolePort)], { encoding: 'utf8' });
    assert.notEqual(st.status, 0);
    assert.match(st.stderr, /wants an API key .*SEALMESH_API_KEY/);
    const ok = spawnSync(SEALMESH, ['status', '--console', String(keyed.consolePort)],
      { encoding: 'utf8', env: { ...process.env, SEALMESH_API_KEY: KEY2 } });
    assert.equal(ok.status, 0, ok.stderr);
  });

  test('SIGHUP reloads the key file: a key added works, a key removed stops', async () => {
    writeFileSync(keys, `${KEY3}\n${KEY2}\n`);
    keyed.child.kill('SIGHUP');
    await waitFor(async () => (await chat(keyed.apiPort, { headers: { authorization: `Bearer ${KEY3}` } })).status === 200,
      { what: 'new key accepted' });
    assertRefused(await chat(keyed.apiPort, { headers: { authorization: `Bearer ${KEY1}` } }), 401, 'invalid_api_key');
    assert.equal((await chat(keyed.apiPort, { headers: { 'x-api-key': KEY2 } })).status, 200);
    // A reload that fails (file now readable by others) keeps the old keys.
    chmodSync(keys, 0o644);
    keyed.child.kill('SIGHUP');
    await waitFor(() => /API keys not reloaded, keeping the 2 old ones: .*accessible by others/.test(keyed.stderr),
      { what: 'failed reload logged' });
    assert.equal((await chat(keyed.apiPort, { headers: { authorization: `Bearer ${KEY3}` } })).status, 200);
    chmodSync(keys, 0o600);
    // Keys are never logged.
    for (const k of [KEY1, KEY2, KEY3]) assert.equal(keyed.stderr.includes(k), false);
  });

  test('a key file readable by others is refused at start, naming the file', () => {
    const f = keyFile([KEY1], 0o644);
    const r = spawnSync(SEALMESH, ['serve', '--port', '0', '--console', '0', '--mesh-port', '0', '--bind', '127.0.0.1',
      '--state-dir', tmpdir('sm-node-'), '--api-key-file', f], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 1);
    assert.ok(r.stderr.includes(f), r.stderr);
    assert.match(r.stderr, /accessible by others \(mode 644/);
    const short = keyFile(['too-short']);
    const s = spawnSync(SEALMESH, ['serve', '--port', '0', '--console', '0', '--mesh-port', '0',
      '--state-dir', tmpdir('sm-node-'), '--api-key-file', short], { encoding: 'utf8', timeout: 10000 });
    assert.equal(s.status, 1);
    assert.match(s.stderr, /line 3: a key must be 16 to 512/);
    assert.equal(s.stderr.includes('too-short'), false, 'the bad key is not echoed');
  });
});

describe('--listen-all', () => {
  const serve = (args) => spawnSync(SEALMESH, ['serve', '--port', '0', '--console', '0', '--mesh-port', '0',
    '--bind', '127.0.0.1', '--state-dir', tmpdir('sm-node-'), ...args], { encoding: 'utf8', timeout: 10000 });

  test('without a key file it refuses to start, with a clear message', () => {
    const r = serve(['--listen-all']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /refusing to start: --listen-all with no --api-key-file: .*--insecure-no-auth/);
    const c = serve(['--console-listen-all']);
    assert.equal(c.status, 2);
    assert.match(c.stderr, /refusing to start: --console-listen-all with no --api-key-file/);
    const both = serve(['--listen-all', '--insecure-no-auth', '--api-key-file', keyFile([KEY1])]);
    assert.equal(both.status, 2);
  });

  test('with --insecure-no-auth it binds the API on all, the console stays on loopback', async () => {
    const n = await startNode(['--model', `m=${mock.url}`, '--listen-all', '--insecure-no-auth', ...fast]);
    assert.match(n.stdout, /api http:\/\/0\.0\.0\.0:\d+\/v1 console http:\/\/127\.0\.0\.1:/);
    const lan = Object.values(os.networkInterfaces()).flat().find((a) => a.family === 'IPv4' && !a.internal);
    if (!lan) return; // no LAN address here: the bind line above is all we can check
    // A LAN neighbour reaches the API under the node's own address...
    const r = await chat(n.apiPort, { addr: lan.address, host: `${lan.address}:${n.apiPort}` });
    assert.equal(r.status, 200, r.text);
    // ...still not under a foreign name, and never the console.
    assertRefused(await chat(n.apiPort, { addr: lan.address, host: 'evil.example' }), 403, 'host_not_allowed');
    await assert.rejects(hreq(n.consolePort, { addr: lan.address, path: '/api/status' }), /ECONNREFUSED/);
  });

  test('with a key file it starts and a LAN neighbour needs the key', async () => {
    const n = await startNode(['--model', `m=${mock.url}`, '--listen-all', '--api-key-file', keyFile([KEY1]), ...fast]);
    const lan = Object.values(os.networkInterfaces()).flat().find((a) => a.family === 'IPv4' && !a.internal);
    const addr = lan ? lan.address : '127.0.0.1';
    assertRefused(await chat(n.apiPort, { addr, host: `${addr}:${n.apiPort}` }), 401, 'invalid_api_key');
    const r = await chat(n.apiPort, { addr, host: `${addr}:${n.apiPort}`, headers: { authorization: `Bearer ${KEY1}` } });
    assert.equal(r.status, 200, r.text);
  });
});

describe('the join secret stays off HTTP', () => {
  test('no unauthenticated answer of the console or the API carries the token', async () => {
    const client = await startNode(['--join', plain.token, ...fast], { cmd: 'client' });
    await waitFor(async () => (await plain.status()).peers.length === 1, { what: 'peer' });
    // Control: the secret is where the operator can read it, mode 0600.
    const file = path.join(plain.stateDir, 'invite.token');
    assert.equal(readFileSync(file, 'utf8').trim(), plain.token);
    assert.ok(plain.token.length > 40);
    assert.equal(spawnSync('stat', ['-c', '%a', file], { encoding: 'utf8' }).stdout.trim(), '600');
    // The join secret itself, in every encoding it could be served in.
    // Control: the decoded token does hold these bytes.
    const secret = readFileSync(path.join(plain.stateDir, 'mesh.secret'));
    assert.equal(secret.length, 32);
    assert.ok(Buffer.from(plain.token, 'base64url').includes(secret), 'control: the token carries the secret');
    const needles = [plain.token, secret.toString('hex'), secret.toString('base64'),
      secret.toString('base64url').slice(0, 40)];
    const answers = [];
    for (const node of [plain, client]) {
      for (const [port, p, method] of [[node.consolePort, '/api/status'], [node.consolePort, '/metrics'],
        [node.consolePort, '/'], [node.consolePort, '/health'], [node.consolePort, '/api/token'],
        [node.consolePort, '/token'], [node.consolePort, '/api/attest/challenge', 'POST'],
        [node.apiPort, '/v1/models'], [node.apiPort, '/health'], [node.apiPort, '/api/status']]) {
        for (const host of [undefined, 'evil.example']) {
          const r = await hreq(port, { path: p, method, host });
          answers.push(JSON.stringify(r.headers) + r.text);
        }
      }
    }
    assert.ok(answers.some((a) => a.includes('"node_id"')), 'the scan saw /api/status');
    assert.ok(answers.some((a) => a.includes('sealmesh_peers')), 'the scan saw /metrics');
    for (const a of answers) {
      for (const n of needles) assert.equal(a.includes(n), false, 'the join secret was served');
    }
  });

  test('sealmesh token reads it from the state dir', () => {
    const t = spawnSync(SEALMESH, ['token', '--state-dir', plain.stateDir], { encoding: 'utf8' });
    assert.equal(t.status, 0, t.stderr);
    assert.equal(t.stdout.trim(), plain.token);
    const dir = tmpdir('sm-empty-');
    const m = spawnSync(SEALMESH, ['token', '--state-dir', dir], { encoding: 'utf8' });
    assert.equal(m.status, 1);
    assert.ok(m.stderr.includes(path.join(dir, 'invite.token')), m.stderr);
    assert.match(m.stderr, /No such file or directory/);
    // Nothing else in the state dir but the files the node keeps.
    assert.ok(readdirSync(plain.stateDir).includes('invite.token'));
  });
});

describe('x-request-id and x-should-retry', () => {
  test('every answer carries an id; a good client id is kept and logged', async () => {
    const seen = new Set();
    for (const [port, p] of [[plain.apiPort, '/v1/models'], [plain.apiPort, '/nope'], [plain.consolePort, '/api/status'],
      [plain.consolePort, '/nope'], [keyed.apiPort, '/v1/models']]) {
      const r = await hreq(port, { path: p });
      assert.match(r.headers['x-request-id'], /^[0-9a-f]{16}$/, `${port} ${p}`);
      seen.add(r.headers['x-request-id']);
    }
    assert.equal(seen.size, 5, 'ids differ');
    const mine = 'trace-42.ab_CD';
    const r = await chat(plain.apiPort, { headers: { 'x-request-id': mine } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-request-id'], mine);
    await waitFor(() => plain.stderr.includes(`id=${mine}`), { what: 'access log line with the id' });
    assert.match(plain.stderr, new RegExp(`POST /v1/chat/completions .*status=200.* id=${mine}`));
    for (const bad of ['has space', 'x'.repeat(65), 'a/b', 'a%b', '']) {
      const b = await hreq(plain.apiPort, { path: '/v1/models', headers: { 'x-request-id': bad } });
      assert.match(b.headers['x-request-id'], /^[0-9a-f]{16}$/, bad);
    }
  });

  test('a request through the mesh has one id, not the host\'s too', async () => {
    const client = await startNode(['--join', plain.token, ...fast], { cmd: 'client' });
    await waitFor(async () => (await hreq(client.apiPort, { path: '/v1/models' })).text.includes('"m"'), { what: 'gossip' });
    await waitFor(async () => (await chat(client.apiPort)).status === 200, { what: 'routable' });
    const r = await chat(client.apiPort, { headers: { 'x-request-id': 'through-mesh-1' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-request-id'], 'through-mesh-1');
  });

  test('4xx that a retry cannot fix say x-should-retry: false; success does not', async () => {
    const ok = await chat(plain.apiPort);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['x-should-retry'], undefined);
    const cases = [
      await hreq(plain.apiPort, { path: '/nope' }), // 404
      await hreq(plain.apiPort, { method: 'POST', path: '/v1/chat/completions', body: '{' }), // 400
      await hreq(plain.apiPort, { method: 'GET', path: '/v1/chat/completions' }), // 405
      await chat(plain.apiPort, { body: chatBody('no-such-model') }), // 404 model
      await chat(keyed.apiPort), // 401
    ];
    for (const r of cases) {
      assert.ok(r.status >= 400 && r.status < 500, r.text);
      assert.equal(r.headers['x-should-retry'], 'false', `${r.status} ${r.text}`);
    }
  });
});

describe('x-should-retry on policy refusals', () => {
  test('a 503 because this node\'s policy refuses every host says x-should-retry: false', async () => {
    const m2 = await startMock(['--tokens', '2']);
    const old = await startNode(['--model', `m2=${m2.url}`, '--no-e2e', ...fast]);
    const strict = await startNode(['--join', old.token, ...fast], { cmd: 'client' });
    await waitFor(async () => (await strict.status()).peers.some((p) => p.e2e === false), { what: 'gossip' });
    const r = await hreq(strict.apiPort, { method: 'POST', path: '/v1/chat/completions', body: chatBody('m2') });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.code, 'model_unavailable');
    assert.match(r.json.error.message, /no end-to-end encryption/);
    assert.equal(r.headers['x-should-retry'], 'false');
    assert.equal(r.headers['retry-after'], undefined);
    assert.equal((await m2.stats()).requests, 0);
  });
});

describe('flags that weaken each other', () => {
  const serve = (args) => spawnSync(SEALMESH, ['serve', '--port', '0', '--console', '0', '--mesh-port', '0',
    '--bind', '127.0.0.1', '--state-dir', tmpdir('sm-node-'), ...args], { encoding: 'utf8', timeout: 10000 });

  test('refused pairs stop the start with a clear message', () => {
    for (const [args, re] of [
      [['--no-e2e', '--require-attested-hosts'], /--no-e2e with --require-attested-hosts: .*plaintext/],
      [['--no-e2e', '--require-hardened'], /--no-e2e with --require-hardened/],
      [['--allow-plaintext-peers', '--require-hardened'], /--allow-plaintext-peers with --require-hardened/],
      [['--min-trust', 'tpm'], /--min-trust with no --require-attested-hosts/],
      [['--allowed-binaries', '/dev/null'], /--allowed-binaries with no --require-attested-hosts/],
      [['--listen-all'], /--listen-all with no --api-key-file/],
      [['--insecure-no-auth', '--api-key-file', keyFile([KEY1])], /--insecure-no-auth with --api-key-file/],
    ]) {
      const r = serve(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^sealmesh: refusing to start: /m);
      assert.match(r.stderr, re);
    }
    // The same for a client.
    const c = spawnSync(SEALMESH, ['client', '--join', plain.token, '--no-e2e', '--require-attested-hosts',
      '--port', '0', '--console', '0'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(c.status, 2);
    assert.match(c.stderr, /--no-e2e with --require-attested-hosts/);
  });

  test('merely redundant pairs start with a warning', async () => {
    const n = await startNode(['--no-e2e', '--allow-plaintext-peers', '--key-epoch', '60', ...fast]);
    assert.match(n.stderr, /warning: --no-e2e with --allow-plaintext-peers/);
    assert.match(n.stderr, /warning: --no-e2e with --key-epoch/);
    const m = await startNode(['--require-attested-hosts', '--allow-plaintext-peers', '--min-trust', 'self_signed',
      '--insecure-no-auth', ...fast]);
    assert.match(m.stderr, /warning: --allow-plaintext-peers with --require-attested-hosts/);
    assert.match(m.stderr, /warning: --insecure-no-auth with loopback listeners/);
    await sleep(10);
  });
});
