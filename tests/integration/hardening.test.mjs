// The posture a node measures travels in its signed announcement; peers see
// it unchanged, and --require-hardened routes only to hardened hosts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';

import { chatBody, postJSON, startMock, startNode, stopAll, waitFor } from './lib.mjs';

after(stopAll);

const fast = ['--gossip-interval', '300'];
// A loader/allocator variable the node must flag (MALLOC_* works in sanitizer
// builds too, where LD_PRELOAD would trip ASan's own check).
const DIRTY = { MALLOC_ARENA_MAX: '2' };

let clean; let dirty; let mockClean; let mockDirty;

test('posture fields round-trip through gossip, unknown values stay unknown', async () => {
  mockClean = await startMock(['--tokens', '2']);
  mockDirty = await startMock(['--tokens', '2']);
  clean = await startNode(['--model', `m=${mockClean.url}`, ...fast]);
  dirty = await startNode(['--model', `m=${mockDirty.url}`, '--join', clean.token, ...fast],
    { env: { ...process.env, ...DIRTY } });
  const own = (await dirty.status()).posture;
  assert.equal(own.env_clean, false);
  assert.equal(own.hardened, false);
  const seen = await waitFor(async () => (await clean.status()).peers.find((p) => p.posture)?.posture,
    { what: 'posture gossiped' });
  assert.deepEqual(seen, own);
  assert.deepEqual((await clean.status()).posture.hardened, true);
  // Whatever this host cannot measure is null on both sides, never true.
  for (const [k, v] of Object.entries(own)) if (v === null) assert.equal(seen[k], null, k);
});

test('--require-hardened sends prompts only to hardened hosts, fail closed', async () => {
  const strict = await startNode(['--join', clean.token, '--require-hardened', ...fast], { cmd: 'client' });
  await waitFor(async () => (await strict.status()).peers.filter((p) => p.models.includes('m')).length === 2,
    { what: 'both hosts known' });
  // Known is not yet routable: wait for the path to the hardened host.
  await waitFor(async () => (await (await fetch(`${strict.api}/models`)).json()).data.some((m) => m.id === 'm'),
    { what: 'routable' });
  const d0 = (await mockDirty.stats()).requests;
  for (let i = 0; i < 6; i++) {
    const r = await postJSON(`${strict.api}/chat/completions`, chatBody('m'));
    assert.equal(r.status, 200, r.text);
  }
  assert.equal((await mockDirty.stats()).requests, d0, 'the unhardened host got nothing');
  await clean.stop();
  await waitFor(async () => (await postJSON(`${strict.api}/chat/completions`, chatBody('m'))).status === 503,
    { what: '503 once the hardened host is gone' });
  assert.equal((await mockDirty.stats()).requests, d0, 'still nothing after failover');

  // Without the flag the unhardened host is used once it is the only one.
  const lax = await startNode(['--join', dirty.token, ...fast], { cmd: 'client' });
  await waitFor(async () => (await postJSON(`${lax.api}/chat/completions`, chatBody('m'))).status === 200,
    { what: 'lax client served' });
  assert.ok((await mockDirty.stats()).requests > d0);
});
