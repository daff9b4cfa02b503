// Freshness and per-member limits (doc/THREAT-MODEL.md, "Freshness and
// per-member limits"): an old signed announcement replayed after its peer was
// pruned, downgrade memory across a restart, and one member flooding a host
// with envelopes that never complete.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, statSync, readFileSync } from 'node:fs';
import path from 'node:path';

import {
  TEST_SEALMESH, chatBody, postJSON, sleep, startMock, startNode, stopAll,
  tmpdir, waitFor, freePort,
} from './lib.mjs';

after(stopAll);

const fast = ['--gossip-interval', '300'];
// Sanitizer builds: no allocator quarantine in the process whose RSS is
// measured (freed blocks would otherwise stay resident and count).
const rssEnv = { ...process.env, ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0:quarantine_size_mb=0' };
const metric = async (node, name) => {
  const m = (await node.metrics()).match(new RegExp(`^${name} (\\d+)`, 'm'));
  return m ? Number(m[1]) : NaN;
};
const peerState = async (node, id) => (await node.status()).peers.find((p) => p.id === id)?.state;
const models = async (node) =>
  (await (await fetch(`${node.api}/models`)).json()).data.map((m) => m.id);
const hostPeer = async (node) => (await node.status()).peers.find((p) => p.models.includes('m'));

describe('freshness', () => {
  test('an old announcement re-gossiped after its peer was pruned is refused', async () => {
    // x remembers every announcement it merged and re-gossips those of pruned
    // peers on SIGUSR2 (test build). 'lax' accepts any age (the old rule):
    // the control that shows the replay reaches and revives the peer there.
    const x = await startNode([...fast], { bin: TEST_SEALMESH });
    const strict = await startNode(['--join', x.token, '--max-clock-skew', '1000', ...fast]);
    const lax = await startNode(['--join', x.token, '--max-clock-skew', '86400000', ...fast]);
    const mock = await startMock();
    const p = await startNode(['--model', `m=${mock.url}`, '--join', x.token, ...fast]);
    const pid = (await p.status()).node_id;
    for (const n of [x, strict, lax]) {
      await waitFor(async () => (await peerState(n, pid)) === 'alive', { what: 'peer learned' });
    }
    await p.stop('SIGKILL'); // no leaving announcement: it goes silent
    for (const n of [x, strict, lax]) {
      await waitFor(async () => (await peerState(n, pid)) === undefined,
        { what: 'peer pruned', timeoutMs: 20000 });
    }
    // Older than 4 intervals + 1 s skew at strict (seq has ms precision).
    await sleep(1500);
    const before = await metric(strict, 'sealmesh_announcements_refused_total\\{reason="old"\\}');
    x.child.kill('SIGUSR2');
    await waitFor(async () => (await peerState(lax, pid)) === 'alive',
      { what: 'control: the replayed announcement revives the peer under the old rule' });
    await waitFor(async () =>
      (await metric(strict, 'sealmesh_announcements_refused_total\\{reason="old"\\}')) > before,
    { what: 'strict refuses the replay' });
    assert.equal(await peerState(strict, pid), undefined, 'not brought back');
    assert.ok(!(await models(strict)).includes('m'));
    await sleep(1000); // lax gossips it on: strict still refuses it
    assert.equal(await peerState(strict, pid), undefined);
  });
});

describe('downgrade memory', () => {
  test('survives a restart of the asking node; the file is 0600', async () => {
    const mock = await startMock();
    const hdir = tmpdir('sm-lim-h-');
    const cdir = tmpdir('sm-lim-c-');
    const port = await freePort();
    let h = await startNode(['--model', `m=${mock.url}`, '--mesh-port', String(port), ...fast], { stateDir: hdir });
    const token = h.token;
    let c = await startNode(['--join', token, '--allow-plaintext-peers', '--state-dir', cdir, ...fast], { cmd: 'client' });
    await waitFor(async () => (await hostPeer(c))?.e2e === true, { what: 'key seen' });
    const file = path.join(cdir, 'downgrade-memory');
    await waitFor(async () => { try { return statSync(file).size > 0; } catch { return false; } }, { what: 'memory written' });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(readFileSync(file, 'utf8'), /^sealmesh-downgrade-memory 1\n[0-9a-f]{64} \d+\n/);
    await c.stop();
    await h.stop();
    // The same host comes back keyless; the client restarts with its state.
    h = await startNode(['--model', `m=${mock.url}`, '--mesh-port', String(port), '--no-e2e', ...fast], { stateDir: hdir });
    c = await startNode(['--join', token, '--allow-plaintext-peers', '--state-dir', cdir, ...fast], { cmd: 'client' });
    // Control: a client with no memory would send this host plaintext.
    const fresh = await startNode(['--join', token, '--allow-plaintext-peers', ...fast], { cmd: 'client' });
    await waitFor(async () => (await models(fresh)).includes('m'), { what: 'control routable' });
    const r0 = await postJSON(`${fresh.api}/chat/completions`, chatBody('m'));
    assert.equal(r0.status, 200, r0.text);
    await waitFor(async () => (await hostPeer(c))?.e2e === false, { what: 'keyless announcement' });
    assert.equal((await hostPeer(c)).e2e_required, true);
    const before = (await mock.stats()).requests;
    const r = await postJSON(`${c.api}/chat/completions`, chatBody('m'));
    assert.equal(r.status, 503, r.text);
    assert.equal((await mock.stats()).requests, before, 'no plaintext prompt reached the host');
    // A memory others could have edited is refused, naming the file.
    await c.stop();
    chmodSync(file, 0o644);
    await assert.rejects(
      startNode(['--join', token, '--state-dir', cdir, ...fast], { cmd: 'client' }),
      /downgrade-memory is accessible by others; refusing it/);
  });
});

describe('per-member limits', () => {
  // One member opens 24 tunnel streams to the host, each declaring the
  // largest envelope (~8 MiB) and sending all of it but the MAC.
  const N = 24;
  const flood = async (hostArgs, floodArgs = []) => {
    const mock = await startMock();
    const host = await startNode(['--model', `m=${mock.url}`, ...hostArgs, ...fast],
      { bin: TEST_SEALMESH, env: rssEnv });
    const honest = await startNode(['--join', host.token, ...fast], { cmd: 'client' });
    await waitFor(async () => (await models(honest)).includes('m'), { what: 'routable' });
    assert.equal((await postJSON(`${honest.api}/chat/completions`, chatBody('m'))).status, 200);
    const base = host.rss();
    const flooder = await startNode(['--join', host.token, '--test-flood-incomplete', String(N), ...floodArgs, ...fast],
      { cmd: 'client', bin: TEST_SEALMESH });
    await waitFor(() => /flooding \S+ with \d+ incomplete/.test(flooder.stderr), { what: 'flood started' });
    // Watch the host's RSS until the flood has arrived: 160 MiB held before
    // a MAC without the limit; with it, the 4 envelopes the share admits.
    const limited = !hostArgs.includes('--test-no-preauth-limit');
    // (E2E: exactly 4 envelopes are admitted at their header; plaintext is
    // charged as it comes, so how many bodies fit the share varies.)
    const plain = floodArgs.includes('--test-flood-plaintext');
    const want = !limited ? 160 * 2 ** 20 : plain ? 2 * 7.9e6 : 4 * 8e6;
    let peak = base;
    const t0 = Date.now();
    await waitFor(async () => {
      peak = Math.max(peak, host.rss());
      const held = await metric(host, 'sealmesh_preauth_buffered_bytes');
      if (process.env.SM_TEST_VERBOSE) console.log(Date.now() - t0, held, ((peak - base) / 2 ** 20).toFixed(1));
      return held >= want;
    }, { what: `${want} bytes held before a MAC`, timeoutMs: 120000, intervalMs: 250 });
    // Then until nothing more is admitted for 1.5 s (refused streams may
    // keep sending: still bounded).
    let last = -1;
    await waitFor(async () => {
      peak = Math.max(peak, host.rss());
      const held = await metric(host, 'sealmesh_preauth_buffered_bytes');
      const stable = held === last;
      last = held;
      return stable;
    }, { what: 'the flood has arrived', timeoutMs: 60000, intervalMs: 1500 });
    peak = Math.max(peak, host.rss());
    // Another member's request through the same host, during the flood.
    const r = await postJSON(`${honest.api}/chat/completions`, chatBody('m'));
    peak = Math.max(peak, host.rss());
    return { host, growth: peak - base, status: r.status, text: r.text, flooder };
  };

  test('control: without the limit the flood grows the host by >160 MiB', async () => {
    const r = await flood(['--test-no-preauth-limit']);
    assert.ok(r.growth > 160 * 2 ** 20, `RSS grew ${(r.growth / 2 ** 20).toFixed(1)} MiB`);
    await r.host.stop();
    await r.flooder.stop();
  });

  test('a flood of incomplete envelopes from one member: RSS bounded, others served', async () => {
    const r = await flood([]);
    assert.ok(r.growth < 64 * 2 ** 20, `RSS grew ${(r.growth / 2 ** 20).toFixed(1)} MiB`);
    assert.equal(r.status, 200, r.text);
    assert.ok(await metric(r.host, 'sealmesh_preauth_refused_total') >= N - 4);
    assert.match(r.host.stderr, /over its per-member share/);
    // The refused streams got the typed refusal (RS_REFUSE_BUSY), not a hang.
    assert.ok((await metric(r.host, 'sealmesh_preauth_bytes')) <= 4 * (8 * 2 ** 20 + 65536 + 58));
  });

  // Plaintext tunnel requests (old clients) are buffered whole by the HTTP
  // layer: their bytes count against the same share.
  test('control: plaintext bodies that never complete, without the limit: >160 MiB', async () => {
    const r = await flood(['--test-no-preauth-limit'], ['--test-flood-plaintext']);
    assert.ok(r.growth > 160 * 2 ** 20, `RSS grew ${(r.growth / 2 ** 20).toFixed(1)} MiB`);
    await r.host.stop();
    await r.flooder.stop();
  });

  test('plaintext bodies that never complete: RSS bounded, others served', async () => {
    const r = await flood([], ['--test-flood-plaintext']);
    assert.ok(r.growth < 64 * 2 ** 20, `RSS grew ${(r.growth / 2 ** 20).toFixed(1)} MiB`);
    assert.equal(r.status, 200, r.text);
    assert.match(r.host.stderr, /plaintext request from \S+ refused: over its per-member share/);
  });

  // Through a relay: the relay caps relay streams per asking member, and
  // names the asker to the host, which charges that asker, not the relay.
  test('a relayed flood: relay streams capped per member, other askers of the same relay served', async () => {
    const mock = await startMock();
    const relay = await startNode([...fast]);
    const host = await startNode(['--model', `m=${mock.url}`, '--advertise', '127.0.0.1:9',
      '--join', relay.token, ...fast], { env: rssEnv });
    const honest = await startNode(['--join', relay.token, ...fast], { cmd: 'client' });
    await waitFor(async () => (await models(honest)).includes('m'), { what: 'routable via the relay' });
    assert.equal((await postJSON(`${honest.api}/chat/completions`, chatBody('m'))).status, 200);
    const base = host.rss();
    const flooder = await startNode(['--join', relay.token, '--test-flood-incomplete', '80', ...fast],
      { cmd: 'client', bin: TEST_SEALMESH });
    await waitFor(() => /flooding \S+ with \d+ incomplete envelopes through a relay/.test(flooder.stderr),
      { what: 'relayed flood started', timeoutMs: 20000 });
    await waitFor(async () => (await metric(relay, 'sealmesh_relay_refused_total')) >= 80 - 64,
      { what: 'relay refuses streams over the per-member cap' });
    await waitFor(() => /envelope of \d+ bytes from \S+ \(relayed\) refused: over its per-member share/.test(host.stderr),
      { what: 'host refuses the flooder\'s envelopes over its share' });
    await sleep(2000);
    const r = await postJSON(`${honest.api}/chat/completions`, chatBody('m'));
    assert.equal(r.status, 200, r.text);
    const growth = host.rss() - base;
    assert.ok(growth < 64 * 2 ** 20, `RSS grew ${(growth / 2 ** 20).toFixed(1)} MiB`);
    assert.equal((await relay.status()).peers.length >= 3, true);
  });
});
