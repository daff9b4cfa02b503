// A member flooding a host with attestation challenges (issue 10), on
// loopback:
//
//   client C (verifier, --challenge-interval 1) --\
//                                                  >-- host H (software attest) -- mock
//   flooder F (test build, 32 challenges always open) --/
//
// C's streams through H keep flowing and complete; H answers F's flood with
// busy answers or refused streams (control: the flood really happened and
// was large), runs at most its rate limit of quotes for F, and C's own
// challenges keep succeeding (C has its own budget). The throughput figure
// is measured in bench/attest_flood.sh, not asserted here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  chatBody, expectedTokens, readStream, sseContent, startMock, startNode, stopAll, waitFor,
  TEST_SEALMESH,
} from './lib.mjs';

let mock; let host; let client; let flooder;
const metric = async (n, name) => {
  const m = (await n.metrics()).match(new RegExp(`^${name} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
};

before(async () => {
  const fast = ['--gossip-interval', '300'];
  mock = await startMock();
  host = await startNode(['--model', `m=${mock.url}`, '--attest', 'software', ...fast]);
  client = await startNode(['--join', host.token, '--attest', 'none', '--min-trust', 'self_signed',
    '--require-attested-hosts', '--challenge-interval', '1', '--attest-window', '5', ...fast],
  { cmd: 'client' });
  await waitFor(async () => {
    const p = (await client.status()).peers.find((x) => x.attestation?.eligible);
    return p;
  }, { what: 'host attested for the client', timeoutMs: 20000 });
}, { timeout: 60000 });

after(async () => { await stopAll(); });

test('a challenge flood leaves another client\'s streams flowing', async () => {
  const ok0 = await metric(client, 'sealmesh_attest_challenge_ok_total');
  const ans0 = await metric(host, 'sealmesh_attest_answered_total');
  const t0 = Date.now();
  flooder = await startNode(['--join', host.token, '--attest', 'none', '--test-challenge-flood', '32',
    '--gossip-interval', '300'], { cmd: 'client', bin: TEST_SEALMESH });
  // Control: the flood is under way (busy answers or refused streams).
  await waitFor(async () => (await metric(host, 'sealmesh_attest_busy_sent_total'))
    + (await metric(host, 'sealmesh_attest_refused_streams_total')) > 200,
  { what: 'flood reaching the host', timeoutMs: 15000 });
  // Eight streams of 30 tokens, 20 ms apart, all at once, twice over.
  for (let round = 0; round < 2; round++) {
    const res = await Promise.all(Array.from({ length: 8 }, () => fetch(`${client.api}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chatBody('m', { stream: true, mock: { tokens: 30, delay_ms: 20 } }),
    })));
    for (const r of res) {
      assert.equal(r.status, 200);
      const { text } = await readStream(r);
      assert.equal(sseContent(text), expectedTokens(30));
      assert.match(text, /data: \[DONE\]/);
    }
  }
  const secs = (Date.now() - t0) / 1000;
  const busy = await metric(host, 'sealmesh_attest_busy_sent_total');
  const refused = await metric(host, 'sealmesh_attest_refused_streams_total');
  const answered = (await metric(host, 'sealmesh_attest_answered_total')) - ans0;
  // The host ran quotes only within its limits: per peer 2/s + burst 4
  // (flooder and client each), whatever the flood's size.
  assert.ok(answered <= 2 * (2 * secs + 4) + 2, `answered ${answered} in ${secs}s`);
  assert.ok(busy + refused > 10 * answered, `busy ${busy} refused ${refused} answered ${answered}`);
  // The client's own challenges kept succeeding during the flood.
  await waitFor(async () => (await metric(client, 'sealmesh_attest_challenge_ok_total')) > ok0 + 1,
    { what: 'client challenges still answered', timeoutMs: 10000 });
  assert.equal(await metric(client, 'sealmesh_attest_challenge_failed_total'), 0);
  assert.ok(await metric(host, 'sealmesh_attest_tpm_queue') <= 8);
});

test('attest --forget removes exactly one pin, safely; --new-ak removes the AK file', async () => {
  const { mkdtempSync, writeFileSync, readFileSync, statSync, existsSync } = await import('node:fs');
  const { spawnSync } = await import('node:child_process');
  const { SEALMESH } = await import('./lib.mjs');
  const dir = mkdtempSync('/tmp/sm-forget-');
  const a = 'aa'.repeat(32); const b = 'bb'.repeat(32);
  writeFileSync(`${dir}/attest.pins`, `# pins\n${a} ${'11'.repeat(32)} ${'e1'.repeat(32)}\n${b} ${'22'.repeat(32)}\n`,
    { mode: 0o600 });
  const run = (...args) => spawnSync(SEALMESH, ['attest', ...args, '--state-dir', dir], { encoding: 'utf8' });
  assert.equal(run('--forget', a.slice(0, 12)).status, 2, 'a prefix is not enough');
  assert.equal(run('--forget', 'cc'.repeat(32)).status, 1, 'no such pin');
  const r = run('--forget', a);
  assert.equal(r.status, 0, r.stderr);
  const left = readFileSync(`${dir}/attest.pins`, 'utf8');
  assert.ok(!left.includes(a));
  assert.ok(left.includes(`${b} ${'22'.repeat(32)}`), 'the other pin stays');
  assert.equal(statSync(`${dir}/attest.pins`).mode & 0o777, 0o600);
  assert.ok(existsSync(`${dir}/attest.pins.lock`));
  writeFileSync(`${dir}/attest.ak`, 'x', { mode: 0o600 });
  assert.equal(run('--new-ak').status, 0);
  assert.ok(!existsSync(`${dir}/attest.ak`));
});

test('attested posture wins: a host whose quoted posture disagrees with field 37 is refused by name', async () => {
  const mock2 = await startMock();
  const liar = await startNode(['--model', `m2=${mock2.url}`, '--attest', 'software', '--join', host.token,
    // --no-privsep: a signer refuses to quote a posture it did not measure
    // (test_signer), so the lie can only come from a single-process node.
    '--test-attest-unhardened', '--no-privsep', '--gossip-interval', '300'], { bin: TEST_SEALMESH });
  // Control: its self-reported posture (field 37) says hardened.
  assert.equal((await liar.status()).posture.hardened, true);
  const strict = await startNode(['--join', host.token, '--require-hardened', '--attest', 'none',
    '--gossip-interval', '300'], { cmd: 'client' });
  const seen = await waitFor(async () => {
    const p = (await strict.status()).peers.find((x) => x.posture_source === 'attested'
      && x.attestation?.posture_disagrees);
    return p;
  }, { what: 'liar verified, disagreement seen', timeoutMs: 20000 });
  assert.equal(seen.posture.hardened, false, '/api/status shows the attested posture');
  await waitFor(async () => (await fetch(`${strict.api}/models`)).ok, { what: 'strict up' });
  const before = (await mock2.stats()).requests;
  const r = await waitFor(async () => {
    const x = await fetch(`${strict.api}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody('m2'),
    });
    const body = await x.json();
    return x.status === 503 && /disagrees with its attested posture/.test(body.error?.message) && body;
  }, { what: '503 naming the disagreement', timeoutMs: 15000 });
  assert.equal(r.error.code, 'model_unavailable');
  assert.equal((await mock2.stats()).requests, before, 'nothing reached the host');
});
