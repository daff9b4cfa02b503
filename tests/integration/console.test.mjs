// The web console (GET / on the console port) in a real headless Chromium:
// a three-node mesh on loopback, the page shows each peer with its link kind
// and attestation level, updates live, and a peer that leaves disappears
// without a reload. Screenshots go to $BUILD/artifacts/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { BUILD, chatBody, postJSON, startMock, startNode, stopAll, tmpdir, waitFor } from './lib.mjs';
import { findChromium, launchBrowser } from './browser.mjs';

const fast = ['--gossip-interval', '500'];
const ARTIFACTS = path.join(BUILD, 'artifacts');
const INJECT = '<em class>sm-inject</em>';

after(stopAll);

describe('console page over HTTP', () => {
  let node;
  before(async () => { node = await startNode([]); });

  test('GET / serves the page with a strict CSP and no inline script', async () => {
    const r = await fetch(`${node.console}/`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    const csp = r.headers.get('content-security-policy');
    assert.ok(csp, 'a Content-Security-Policy header');
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*|https?:/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    const html = await r.text();
    // Every <script> has a src on this origin and no body; no event attributes.
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    assert.ok(scripts.length >= 1);
    for (const [, attrs, body] of scripts) {
      assert.match(attrs, /src="\/[^/]/, 'same-origin script');
      assert.equal(body.trim(), '', 'no inline script');
    }
    assert.doesNotMatch(html, /\son[a-z]+\s*=/i, 'no inline event handler');
    assert.doesNotMatch(html, /https?:\/\//, 'no third-party URL');
    for (const [p, type] of [['/app.js', /^text\/javascript/], ['/app.css', /^text\/css/]]) {
      const a = await fetch(`${node.console}${p}`);
      assert.equal(a.status, 200, p);
      assert.match(a.headers.get('content-type'), type);
      assert.equal(a.headers.get('x-content-type-options'), 'nosniff');
      assert.ok((await a.text()).length > 100);
    }
    const js = await (await fetch(`${node.console}/app.js`)).text();
    assert.doesNotMatch(js, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no third-party URL in the script');
    const sink = js.match(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    assert.equal(sink, null, 'mesh-supplied strings are never parsed as HTML or code');
  });

  test('the page is not on the API port, and other paths are unchanged', async () => {
    const api = await fetch(`http://127.0.0.1:${node.apiPort}/`);
    assert.equal(api.status, 404);
    const nf = await fetch(`${node.console}/nope`);
    assert.equal(nf.status, 404);
    assert.equal((await nf.json()).error.code, 'not_found');
    const post = await fetch(`${node.console}/`, { method: 'POST', body: '{}' });
    assert.equal(post.status, 405);
  });
});

describe('console page in headless Chromium', { skip: findChromium() ? false : 'chromium not installed' }, () => {
  let browser; let mock; let relay; let host; let client;

  before(async () => {
    mock = await startMock(['--tokens', '3']);
    // A model name is whatever a member announces: this one is markup.
    relay = await startNode(['--model', `near=${mock.url}`, '--model', `${INJECT}=${mock.url}`, ...fast]);
    // The host advertises an address nobody can dial: the client reaches it
    // only through the relay.
    host = await startNode(['--model', `far=${mock.url}`, '--advertise', '127.0.0.1:9',
      '--join', relay.token, ...fast], { stateDir: tmpdir('sm-host-') });
    client = await startNode(['--join', relay.token, ...fast], { cmd: 'client' });
    await waitFor(async () => {
      const st = await client.status();
      return st.peers.length === 2 && st.peers.every((p) => p.attestation?.level !== 'none');
    }, { what: 'client sees both peers, attested', timeoutMs: 20000 });
    // The first request to the host opens the relayed path.
    const first = await postJSON(`${client.api}/chat/completions`, chatBody('far'));
    assert.equal(first.status, 200, first.text);
    await waitFor(async () => (await client.status()).peers.some((p) => p.link === 'relay'),
      { what: 'a relayed link' });
    browser = await launchBrowser();
  });
  after(async () => { if (browser) await browser.close(); });

  test('shows each peer with link kind and attestation level, live, and a leaving peer disappears without reload', async () => {
    const rs = await relay.status();
    const hs = await host.status();
    const page = await browser.newPage(`${client.console}/`);
    const rows = () => page.eval(`[...document.querySelectorAll('#peers tbody tr')].map((tr) => ({
      id: tr.dataset.peer, link: tr.dataset.link, level: tr.dataset.level,
      text: tr.innerText }))`);
    await waitFor(async () => (await rows()).length === 2, { what: 'two peer rows', timeoutMs: 15000 });
    // Plant a marker: a reload would lose it.
    await page.eval('window.__smMarker = 42');

    const byId = Object.fromEntries((await rows()).map((r) => [r.id, r]));
    const expectLevel = (st, id) => st.peers.find((p) => p.id === id).attestation.level;
    const cs = await client.status();
    const r = byId[rs.node_id]; const h = byId[hs.node_id];
    assert.ok(r && h, `rows for relay and host: ${JSON.stringify(Object.keys(byId))}`);
    assert.equal(r.link, 'direct');
    assert.match(r.text, /direct/);
    assert.equal(h.link, 'relay');
    assert.match(h.text, new RegExp(`relayed via ${rs.node_id.slice(0, 12)}`));
    for (const [row, id] of [[r, rs.node_id], [h, hs.node_id]]) {
      const lvl = expectLevel(cs, id);
      assert.notEqual(lvl, 'none', 'software attestation verified');
      assert.equal(row.level, lvl);
      assert.match(row.text, new RegExp(`\\b${lvl}\\b`), 'level shown as text');
    }
    // The graph has a node per peer, a solid link to the relay and a dashed
    // one from the relay to the host.
    const graph = await page.eval(`({
      nodes: [...document.querySelectorAll('#graph circle')].map((c) => c.dataset.node),
      lines: [...document.querySelectorAll('#graph [data-peer]')].map((l) => [l.dataset.peer, l.getAttribute('class')]) })`);
    assert.deepEqual(graph.nodes.sort(), [cs.node_id, rs.node_id, hs.node_id].sort());
    assert.deepEqual(Object.fromEntries(graph.lines), { [rs.node_id]: 'direct', [hs.node_id]: 'relay' });
    // Models: which hosts serve each, routable now.
    const models = await page.eval(`Object.fromEntries([...document.querySelectorAll('#models tbody tr')]
      .map((tr) => [tr.dataset.model, tr.dataset.routable]))`);
    assert.deepEqual(models, { far: 'true', near: 'true', [INJECT]: 'true' });
    // Mesh-supplied strings are text, never markup.
    assert.equal(await page.eval('document.querySelectorAll("em").length'), 0, 'no element from a model name');
    assert.ok((await page.eval("document.getElementById('models').innerText")).includes(INJECT));
    // This node's attestation provider and id.
    assert.equal(await page.eval(`document.getElementById('self-id').textContent`), cs.node_id);
    assert.equal(await page.eval(`document.getElementById('self-attest').textContent`), cs.attestation.provider);

    // Traffic through the client shows up on the requests/s chart.
    for (let i = 0; i < 6; i++) {
      const res = await postJSON(`${client.api}/chat/completions`, chatBody(i % 2 ? 'far' : 'near'));
      assert.equal(res.status, 200, res.text);
    }
    await waitFor(async () => Number(await page.eval(`document.getElementById('v-rps').textContent`)) > 0,
      { what: 'requests/s above 0' });

    // Never the invite token (join secret) of any node.
    const html = await page.eval('document.documentElement.outerHTML');
    for (const n of [client, relay, host]) assert.ok(!html.includes(n.token), 'no invite token in the page');
    assert.ok(!html.includes('"token"'));

    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(path.join(ARTIFACTS, 'console.png'), await page.screenshot());
    await page.setSize(390, 844, true);
    await page.eval('new Promise((r) => setTimeout(r, 1500))');
    writeFileSync(path.join(ARTIFACTS, 'console-phone.png'), await page.screenshot());
    const overflow = await page.eval('document.documentElement.scrollWidth - window.innerWidth');
    assert.ok(overflow <= 1, `no horizontal scrolling on a phone (overflow ${overflow}px)`);
    await page.setSize(1280, 900);

    // The host leaves: its row, graph node and model go away, no reload.
    const before = Number(await page.eval('document.documentElement.dataset.updates'));
    await host.stop();
    await waitFor(async () => {
      const ids = (await rows()).map((x) => x.id);
      return ids.length === 1 && ids[0] === rs.node_id;
    }, { what: 'the host row disappears', timeoutMs: 15000 });
    assert.equal(await page.eval('window.__smMarker'), 42, 'the page was not reloaded');
    assert.ok(Number(await page.eval('document.documentElement.dataset.updates')) > before);
    assert.ok(!(await page.eval(`[...document.querySelectorAll('#graph circle')].map((c) => c.dataset.node)`)).includes(hs.node_id));
    await waitFor(async () => (await page.eval(`[...document.querySelectorAll('#models tbody tr')].map((t) => t.dataset.model)`)).join() === `${INJECT},near`,
      { what: 'the far model goes away' });
    assert.deepEqual(page.consoleErrors, [], 'no script error or CSP violation in the page');
    await page.close();
  });

  test('a host the policy refuses shows as not eligible, with the reason, and its models as not routable', async () => {
    // Software attestation is self_signed: below the default --min-trust tpm.
    const strict = await startNode(['--join', relay.token, '--require-attested-hosts', ...fast], { cmd: 'client' });
    const rs = await relay.status();
    await waitFor(async () => (await strict.status()).peers.some((p) => p.id === rs.node_id && p.attestation?.level === 'self_signed'),
      { what: 'the strict client verifies the relay', timeoutMs: 15000 });
    const page = await browser.newPage(`${strict.console}/`);
    const row = await waitFor(() => page.eval(`(() => {
      const tr = document.querySelector('#peers tbody tr[data-peer="${rs.node_id}"]');
      return tr && tr.dataset.eligible === 'false' ? { text: tr.innerText, level: tr.dataset.level } : null; })()`),
    { what: 'the relay row, refused' });
    assert.equal(row.level, 'self_signed');
    assert.match(row.text, /below --min-trust/);
    const st = await strict.status();
    assert.equal(st.peers.find((p) => p.id === rs.node_id).route_refusal, "the host's attestation is below --min-trust");
    const models = await page.eval(`Object.fromEntries([...document.querySelectorAll('#models tbody tr')]
      .map((tr) => [tr.dataset.model, tr.dataset.routable]))`);
    assert.equal(models.near, 'false');
    // The refused host is ringed in the graph.
    assert.match(await page.eval(`document.querySelector('#graph circle[data-node="${rs.node_id}"]').getAttribute('class')`), /\brefused\b/);
    writeFileSync(path.join(ARTIFACTS, 'console-refused.png'), await page.screenshot());
    assert.deepEqual(page.consoleErrors, []);
    await page.close();
    await strict.stop();
  });
});
