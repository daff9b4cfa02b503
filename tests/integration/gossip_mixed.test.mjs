// Gossip v1 (full push, re-sign every interval) and v2 (digest anti-entropy,
// re-sign on change) in one mesh: real nodes on loopback, the v1 ones being
// test builds run with --test-gossip-v1. Everyone learns everyone, routing
// works across both kinds, and a v1 node keeps a v2 node it knows only
// through gossip alive (v2 nodes re-sign every interval while v1 peers are
// around).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  chatBody, postJSON, sleep, startMock, startNode, stopAll, waitFor, TEST_SEALMESH,
} from './lib.mjs';

after(stopAll);

const IV = 300;
const fast = ['--gossip-interval', String(IV)];
const old = (args) => startNode([...args, '--test-gossip-v1', ...fast],
  { bin: TEST_SEALMESH, cmd: 'client' });

test('a mesh of v1 and v2 nodes converges and routes', async () => {
  const mock = await startMock(['--tokens', '3']);
  // a: v2 host; b: v1, joins a; c: v2, joins b; d: v1, joins c;
  // e: v2 client, joins a (b and d know e only through gossip).
  const a = await startNode(['--model', `m=${mock.url}`, ...fast]);
  const b = await old(['--join', a.token]);
  const c = await startNode(['--join', b.token, ...fast], { cmd: 'client' });
  const d = await old(['--join', c.token]);
  const e = await startNode(['--join', a.token, ...fast], { cmd: 'client' });
  const nodes = [a, b, c, d, e];
  const ids = await Promise.all(nodes.map(async (n) => (await n.status()).node_id));
  const knowsAll = async () => {
    for (const [i, n] of nodes.entries()) {
      const peers = (await n.status()).peers.filter((p) => p.state === 'alive').map((p) => p.id);
      for (const [j, id] of ids.entries()) {
        if (i !== j && !peers.includes(id)) return false;
      }
    }
    return true;
  };
  await waitFor(knowsAll, { what: 'every node knows every other', timeoutMs: 20000 });

  // Routing from a v1 node and from a v2 node that joined through one.
  for (const n of [d, c]) {
    await waitFor(async () => (await postJSON(`${n.api}/chat/completions`, chatBody('m'))).status === 200,
      { what: 'model m reachable', timeoutMs: 15000 });
  }

  // A v1 node calls a peer stale after three intervals without a newer
  // announcement; a v2 node alone re-signs every ten. Sampled over twenty
  // intervals, the v1 nodes hold e (known only by gossip) alive throughout.
  for (let k = 0; k < 20; k++) {
    await sleep(IV);
    for (const n of [b, d]) {
      const pe = (await n.status()).peers.find((p) => p.id === ids[4]);
      assert.ok(pe, 'e known');
      assert.equal(pe.link, 'none', 'known through gossip only');
      assert.equal(pe.state, 'alive', `sample ${k}`);
    }
  }
  assert.ok(await knowsAll());

  // The v2 nodes noticed which links speak v1, and only those.
  const short = (id) => id.slice(0, 12);
  assert.match(a.stderr, new RegExp(`${short(ids[1])} speaks gossip v1`));
  assert.match(c.stderr, new RegExp(`${short(ids[3])} speaks gossip v1`));
  assert.doesNotMatch(a.stderr, new RegExp(`${short(ids[4])} speaks gossip v1`));
  assert.doesNotMatch(e.stderr, /speaks gossip v1/);
});

test('--max-peers caps the peer table; the node keeps serving', async () => {
  const a = await startNode(['--max-peers', '1', ...fast]);
  const b = await startNode(['--join', a.token, ...fast], { cmd: 'client' });
  const c = await startNode(['--join', a.token, ...fast], { cmd: 'client' });
  const links = async () => Number((await a.metrics()).match(/^sealmesh_links (\d+)/m)[1]);
  await waitFor(async () => await links() === 2, { what: 'two links up' });
  await sleep(4 * IV);
  assert.equal((await a.status()).peers.length, 1);
  assert.equal((await fetch(`${a.api}/models`)).status, 200);
  await Promise.all([b.stop(), c.stop(), a.stop()]);
});

// A leaving node's signed announcement used to be cancelled by its own
// GOAWAY (queued HEADERS are dropped once GOAWAY is submitted), so nodes
// without a link to it only dropped it when it was pruned (6 intervals). Now
// the leaving gossip goes out first and travels through the relay.
test('a leave reaches a node without a link to the leaver well before pruning', async () => {
  const slow = ['--gossip-interval', '2000'];
  const mock = await startMock(['--tokens', '2']);
  const relay = await startNode([...slow]);
  const host = await startNode(['--model', `m=${mock.url}`, '--advertise', '127.0.0.1:9',
    '--join', relay.token, ...slow]);
  const client = await startNode(['--join', relay.token, ...slow], { cmd: 'client' });
  const hid = (await host.status()).node_id;
  await waitFor(async () => (await client.status()).peers.some((p) => p.id === hid),
    { what: 'client knows the host', timeoutMs: 15000 });
  await host.stop();
  const t0 = Date.now();
  // Stale would take 3 intervals (6 s), pruning 6 (12 s).
  await waitFor(async () => !(await client.status()).peers.some((p) => p.id === hid),
    { what: 'leave seen by the client', timeoutMs: 5000 });
  assert.ok(Date.now() - t0 < 5000);
  await Promise.all([client.stop(), relay.stop()]);
});
