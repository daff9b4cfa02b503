// Membership of an owned mesh (doc/PROTOCOL.md "Membership"): an owner key,
// signed invites that expire and can be single-use, per-node credentials
// with rights, and revocations enforced by every node within one gossip
// interval. Real processes on loopback.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

import {
  chatBody, postJSON, sleep, startMock, startNode, stopAll, tmpdir, waitFor, SEALMESH,
} from './lib.mjs';

after(stopAll);

const GOSSIP_MS = 1000;
const fast = ['--gossip-interval', String(GOSSIP_MS)];

function cli(args) {
  const r = spawnSync(SEALMESH, args, { encoding: 'utf8', timeout: 20000 });
  return r;
}

// A new owned mesh: `sealmesh owner init`, then a node on that state dir.
async function ownerNode(args = []) {
  const dir = tmpdir('sm-owner-');
  const r = cli(['owner', 'init', '--state-dir', dir]);
  assert.equal(r.status, 0, r.stderr);
  const node = await startNode([...fast, ...args], { stateDir: dir });
  return node;
}

function invite(node, ...args) {
  const r = cli(['invite', '--state-dir', node.stateDir, ...args]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const metric = async (node, name) => {
  const m = (await node.metrics()).match(new RegExp(`^${name} (\\d+)`, 'm'));
  return m ? Number(m[1]) : NaN;
};
const models = async (node) =>
  (await (await fetch(`${node.api}/models`)).json()).data.map((m) => m.id).sort();
const peerIds = async (node) => (await node.status()).peers.map((p) => p.id);
const nodeId = async (node) => (await node.status()).node_id;

// Join with `sealmesh client` and expect it to fail: returns its stderr.
function joinFails(inv) {
  const r = spawnSync(SEALMESH, ['client', '--join', inv, '--port', '0', '--console', '0',
    '--bind', '127.0.0.1'], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 1, `expected a refusal, got ${r.status}: ${r.stderr}`);
  return r.stderr;
}

describe('owner and invites', () => {
  let owner;

  test('owner init: a 0600 owner key, the mesh id derived from it, status says owned', async () => {
    owner = await ownerNode();
    const key = path.join(owner.stateDir, 'owner', 'identity.key');
    assert.equal(statSync(key).mode & 0o777, 0o600);
    const show = cli(['owner', 'show', '--state-dir', owner.stateDir]);
    assert.equal(show.status, 0, show.stderr);
    const st = await owner.status();
    assert.equal(st.membership.mode, 'owned');
    assert.equal(st.membership.owner_key, true);
    assert.equal(st.membership.rights, 'host,relay,use');
    assert.match(show.stdout, new RegExp(`owner ${st.membership.owner}`));
    assert.match(show.stdout, new RegExp(`mesh_id ${st.mesh_id}`));
    const table = cli(['status', '--console', String(owner.consolePort)]);
    assert.match(table.stdout, /member {2}owned by [0-9a-f]{12}, owner key here \(rights host,relay,use; 0 revocation/);
    // A mesh without an owner key says it is a legacy token mesh.
    const legacy = await startNode([]);
    assert.equal((await legacy.status()).membership.mode, 'legacy');
    await legacy.stop();
  });

  test('an expired invite is refused by the owner node with a clear error', async () => {
    const inv = invite(owner, '--expires', '1s');
    await sleep(2100);
    const err = joinFails(inv);
    assert.match(err, /cannot join the mesh: the invite has expired/);
    assert.deepEqual(await peerIds(owner), []);
  });

  test('a single-use invite is redeemed once; the second redeem is refused', async () => {
    const inv = invite(owner, '--single-use', '--expires', '10m');
    const first = await startNode(['--join', inv, ...fast], { cmd: 'client' });
    await waitFor(async () => (await peerIds(owner)).length === 1, { what: 'first member' });
    assert.equal((await first.status()).membership.rights, 'use');
    const err = joinFails(inv);
    assert.match(err, /cannot join the mesh: the invite was already used/);
    assert.equal(await metric(owner, 'sealmesh_member_redeemed_total'), 1);
    await first.stop();
  });

  test('a used single-use invite stays used after the owner node restarts', async () => {
    const inv = invite(owner, '--single-use', '--expires', '10m');
    const first = await startNode(['--join', inv, ...fast], { cmd: 'client' });
    await waitFor(async () => (await first.status()).membership.rights === 'use', { what: 'redeemed' });
    await first.stop();
    const dir = owner.stateDir;
    const port = owner.meshPort;
    await owner.stop();
    owner = await startNode([...fast, '--mesh-port', String(port)], { stateDir: dir });
    const err = joinFails(inv);
    assert.match(err, /the invite was already used/);
  });

  test('a node without a credential cannot link: a token is not enough', async () => {
    // The token carries the join secret: the TLS handshake and the join
    // proof succeed, membership does not.
    const before = await metric(owner, 'sealmesh_member_refused_total');
    const err = joinFails(owner.token);
    assert.match(err, /the mesh is owned: a token is not enough/);
    assert.deepEqual(await peerIds(owner), []);
    assert.ok(await metric(owner, 'sealmesh_member_refused_total') > before);
  });

  test('nobody can present another owner: a self-made owner with the join secret is refused', async () => {
    // The attacker knows the join secret (a token of the mesh) and makes its
    // own owner key, so it holds a validly signed credential -- by the wrong
    // owner.
    const dir = tmpdir('sm-rogue-');
    assert.equal(cli(['owner', 'init', '--state-dir', dir]).status, 0);
    const r = spawnSync(SEALMESH, ['serve', '--state-dir', dir, '--join', owner.token, '--port', '0',
      '--console', '0', '--mesh-port', '0', '--bind', '127.0.0.1'], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /cannot join the mesh: the credential is from another owner/);
    assert.deepEqual(await peerIds(owner), []);
  });

  test('an invite altered by one byte does not verify', () => {
    const inv = invite(owner);
    const b = Buffer.from(inv, 'base64url');
    b[40] ^= 1; // inside the invite id: signed, not otherwise checked
    const r = spawnSync(SEALMESH, ['client', '--join', b.toString('base64url'), '--port', '0',
      '--console', '0'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /bad invite token: the invite's signature does not verify/);
  });
});

describe('rights', () => {
  test('a use-only member\'s announced model is never routed to; a host member\'s is', async () => {
    const mockOwn = await startMock(['--tokens', '3', '--model', 'own']);
    const mockUse = await startMock(['--tokens', '3', '--model', 'sneaky']);
    const mockHost = await startMock(['--tokens', '3', '--model', 'granted']);
    const owner = await ownerNode(['--model', `own=${mockOwn.url}`]);
    const useOnly = await startNode(['--join', invite(owner, '--rights', 'use'),
      '--model', `sneaky=${mockUse.url}`, ...fast]);
    const host = await startNode(['--join', invite(owner, '--rights', 'host'),
      '--model', `granted=${mockHost.url}`, ...fast]);
    const client = await startNode(['--join', invite(owner), ...fast], { cmd: 'client' });
    // Control: the host member's model is routed, so the client does see
    // announcements from members.
    await waitFor(async () => (await models(client)).includes('granted'), { what: 'host model' });
    await waitFor(async () => (await peerIds(client)).length === 3, { what: 'all peers' });
    const ok = await postJSON(`${client.api}/chat/completions`, chatBody('granted'));
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await mockHost.stats()).requests, 1);
    // The use-only member is a peer (it announced "sneaky") but nobody routes to it.
    const st = await client.status();
    const sneaky = st.peers.find((p) => p.models.includes('sneaky'));
    assert.ok(sneaky, 'its announcement was merged');
    assert.equal(sneaky.rights, 'use');
    assert.equal(st.peers.find((p) => p.models.includes('granted')).rights, 'host,use');
    assert.ok(!(await models(client)).includes('sneaky'));
    assert.ok(!(await models(owner)).includes('sneaky'));
    for (const n of [client, owner, host]) {
      const r = await postJSON(`${n.api}/chat/completions`, chatBody('sneaky'));
      assert.ok(r.status === 404 || r.status === 503, `${r.status} ${r.text}`);
    }
    assert.equal((await mockUse.stats()).requests, 0, 'the use-only member got no prompt');
    // It can still use the mesh.
    const use = await postJSON(`${useOnly.api}/chat/completions`, chatBody('own'));
    assert.equal(use.status, 200, use.text);
    await Promise.all([useOnly.stop(), host.stop(), client.stop(), owner.stop()]);
  });
});

describe('revocation', () => {
  let owner; let host; let client; let mockHost; let hostId; let clientInv;

  test('setup: an owner, a host member and a client member', async () => {
    mockHost = await startMock(['--tokens', '4', '--model', 'hm']);
    owner = await ownerNode();
    host = await startNode(['--join', invite(owner, '--rights', 'host,relay'),
      '--model', `hm=${mockHost.url}`, ...fast]);
    clientInv = invite(owner, '--expires', '1h');
    client = await startNode(['--join', clientInv, ...fast]);
    hostId = await nodeId(host);
    await waitFor(async () => (await models(client)).includes('hm'), { what: 'hm routable' });
    await waitFor(async () => (await client.status()).peers.find((p) => p.id === hostId)?.link === 'direct',
      { what: 'direct link client-host' });
    const r = await postJSON(`${client.api}/chat/completions`, chatBody('hm'));
    assert.equal(r.status, 200, r.text);
  });

  test('revoke: within one gossip interval the host gets no prompt, its links close, a stream in flight ends cleanly', async (t) => {
    const res = await fetch(`${client.api}/chat/completions`, {
      method: 'POST', body: chatBody('hm', { stream: true, mock: { tokens: 2000, delay_ms: 20 } }),
    });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    await reader.read();
    const r = cli(['revoke', hostId, '--state-dir', owner.stateDir]);
    assert.equal(r.status, 0, r.stderr);
    const t0 = Date.now();
    let text = '';
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value);
    }
    const took = Date.now() - t0;
    t.diagnostic(`stream ended ${took} ms after sealmesh revoke`);
    // The owner picks the file up at its next tick (<= one interval), then
    // floods the revocation at once; 2 s of slack for loaded CI machines.
    assert.ok(took < GOSSIP_MS + 2000, `stream ended after ${took} ms`);
    assert.ok(!text.includes('data: [DONE]'), 'the stream did not complete normally');
    assert.match(text, /"error"/, 'the client saw an SSE error event');
    const counted = (await mockHost.stats()).requests;
    // Everyone dropped it: no peer entry, no link, its model gone.
    for (const n of [owner, client]) {
      await waitFor(async () => !(await peerIds(n)).includes(hostId), { what: 'host dropped', timeoutMs: 3000 });
    }
    assert.ok(!(await models(client)).includes('hm'));
    const again = await postJSON(`${client.api}/chat/completions`, chatBody('hm'));
    assert.ok(again.status === 404 || again.status === 503, `${again.status}`);
    await sleep(3 * GOSSIP_MS); // the revoked node keeps trying to come back
    assert.equal((await mockHost.stats()).requests, counted, 'no prompt reached the revoked host');
    assert.ok(!(await peerIds(client)).includes(hostId));
    assert.ok(await metric(client, 'sealmesh_member_revoked_links_total') >= 1);
    const hst = await host.status();
    assert.equal(hst.peers.filter((p) => p.link === 'direct').length, 0, 'the revoked host holds no link');
    assert.equal((await client.status()).membership.revocations, 1);
  });

  test('the revocation survives a restart; a restarted revoked node is refused', async () => {
    const dir = client.stateDir;
    await client.stop();
    client = await startNode(['--join', clientInv, ...fast], { stateDir: dir });
    assert.equal((await client.status()).membership.revocations, 1, 'read back from the state dir');
    await waitFor(async () => (await peerIds(client)).length >= 1, { what: 'rejoined' });
    await sleep(2 * GOSSIP_MS);
    assert.ok(!(await peerIds(client)).includes(hostId));
    // The revoked node itself, restarted with its credential, cannot link.
    const hdir = host.stateDir;
    await host.stop();
    const r = spawnSync(SEALMESH, ['serve', '--state-dir', hdir, '--join', clientInv, '--port', '0',
      '--console', '0', '--mesh-port', '0', '--bind', '127.0.0.1'], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /revoked/);
  });
});

describe('co-owners', () => {
  test('a copy of the owner key makes a co-owner: it redeems its own invites and revokes', async () => {
    const owner = await ownerNode();
    const co = tmpdir('sm-coowner-');
    mkdirSync(path.join(co, 'owner'), { mode: 0o700 });
    copyFileSync(path.join(owner.stateDir, 'owner', 'identity.key'), path.join(co, 'owner', 'identity.key'));
    copyFileSync(path.join(owner.stateDir, 'mesh.secret'), path.join(co, 'mesh.secret'));
    const coNode = await startNode(['--join', invite(owner), ...fast], { stateDir: co });
    const cst = await coNode.status();
    assert.equal(cst.membership.owner_key, true);
    assert.equal(cst.membership.rights, 'host,relay,use');
    assert.equal(cst.mesh_id, (await owner.status()).mesh_id);
    await waitFor(async () => (await peerIds(owner)).length === 1, { what: 'co-owner linked' });
    // An invite from the co-owner names the co-owner and is redeemed there.
    const member = await startNode(['--join', invite(coNode, '--single-use'), ...fast]);
    const mid = await nodeId(member);
    await waitFor(async () => (await peerIds(owner)).includes(mid), { what: 'member seen by the owner' });
    // The co-owner revokes; the first owner enforces it.
    assert.equal(cli(['revoke', mid, '--state-dir', co]).status, 0);
    await waitFor(async () => !(await peerIds(owner)).includes(mid),
      { what: 'revocation from the co-owner', timeoutMs: GOSSIP_MS + 3000 });
    await Promise.all([member.stop(), coNode.stop(), owner.stop()]);
  });
});
