// Traffic shape: what an observer of the client-relay link learns about a
// streamed completion. Namespaces made by this test (prefix shp<pid>, subnet
// 10.213/16):
//
//   [test] 10.213.0.1 -- 10.213.0.2 [client] 10.213.1.1 -- 10.213.1.2 [relay]
//                                             10.213.2.1 -- 10.213.2.2 [host + mock]
//
// Two client nodes share the client namespace: one with shaping off
// (--no-shaping: it does not ask the host for padded, paced answers) and one
// with the defaults. tcpdump captures the client-relay link; for each
// completion the test notes its time window. The mock streams completions of
// two "topics" with different token lengths and inter-token times (and the
// same total duration for the same seed). shape_classify.py rebuilds the TLS
// records the relay sent, makes per-completion features and cross-validates
// a logistic regression: with shaping off it must tell the topics apart
// (AUC >= 0.9: the test sees the leak), with the defaults it must not
// (AUC <= 0.6).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  netnsSetup, readStream, sleep, startMock, startNode, stopAll, tmpdir, waitFor,
} from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = process.getuid() === 0;
const have = (cmd) => spawnSync('sh', ['-c', cmd]).status === 0;
// Debian's python3-sklearn lives with the system python (a pyenv python3
// first in PATH does not see it).
const PY = ['python3', '/usr/bin/python3'].find((py) => have(`${py} -c "import sklearn, numpy" 2>/dev/null`));
const tools = have('command -v tcpdump') && PY !== undefined;
const skip = (!root && 'needs root for ip netns') ||
  (!tools && 'needs tcpdump, python3-sklearn and python3-numpy (scripts/install-deps.sh)');
const P = `shp${process.pid % 1000}`;
const PER_TOPIC = 40;

let teardown = () => {};
let host; let off; let on; let dump; let pcap;

function nsJSON(ns, url) {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'curl', '-s', '--max-time', '5', url], { encoding: 'utf8' });
  return JSON.parse(r.stdout);
}

// The local port of a client node's link to the relay (ss shows the pid).
function linkPort(pid) {
  const r = spawnSync('ip', ['netns', 'exec', `${P}C`, 'ss', '-tnpH', 'state', 'established',
    'dst', '10.213.1.2:9338'], { encoding: 'utf8' });
  const line = r.stdout.split('\n').find((l) => l.includes(`pid=${pid},`));
  return line ? Number(line.trim().split(/\s+/)[2].split(':').pop()) : null;
}

before(async () => {
  if (skip) return;
  teardown = netnsSetup(P, ['C', 'R', 'H'], [
    [null, '10.213.0.1', 'C', '10.213.0.2'],
    ['C', '10.213.1.1', 'R', '10.213.1.2'],
    ['R', '10.213.2.1', 'H', '10.213.2.2'],
  ]);
  const gossip = ['--gossip-interval', '5000'];
  const mock = await startMock([], { netns: `${P}H` });
  const relay = await startNode(['--bind', '0.0.0.0', '--mesh-port', '9338', ...gossip], { netns: `${P}R` });
  host = await startNode(['--model', `m=${mock.url}`, '--bind', '10.213.2.2', '--mesh-port', '9338',
    '--join', relay.token, ...gossip], { netns: `${P}H` });
  // The observer starts before the clients dial, so it sees each TLS
  // stream from its first byte.
  pcap = path.join(tmpdir('sm-shape-'), 'link.pcap');
  dump = spawn('ip', ['netns', 'exec', `${P}C`, 'tcpdump', '-i', `${P}a1`, '-U', '-s', '0', '-w', pcap,
    'tcp port 9338'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let dumpErr = '';
  dump.stderr.on('data', (d) => { dumpErr += d; });
  await waitFor(() => dumpErr.includes('listening on'), { what: 'tcpdump', timeoutMs: 10000 });
  const cl = ['--listen-all', '--bind', '10.213.1.1', '--join', relay.token, ...gossip];
  off = await startNode([...cl, '--no-shaping'], { netns: `${P}C`, cmd: 'client' });
  on = await startNode(cl, { netns: `${P}C`, cmd: 'client' });
  for (const c of [off, on]) {
    c.url = `http://10.213.0.2:${c.apiPort}/v1`;
    await waitFor(async () => {
      const st = await (await fetch(`http://10.213.0.2:${c.consolePort}/api/status`)).json();
      const hp = st.peers.find((p) => p.models.includes('m'));
      return hp?.response_shaping &&
        (await (await fetch(`${c.url}/models`)).json()).data.some((m) => m.id === 'm');
    }, { what: 'the host routable through the relay', timeoutMs: 30000 });
  }
}, { timeout: 90000 });

after(async () => {
  if (dump && dump.exitCode === null) dump.kill('SIGINT');
  await stopAll();
  teardown();
});

// One completion of 'topic' (seed fixed): its time window on the wall clock.
async function trace(node, mode, topic, seed) {
  const start = Date.now();
  const res = await fetch(`${node.url}/chat/completions`, {
    method: 'POST',
    // Prompts of 10..400 bytes: one request bucket (1 KiB) for all.
    body: JSON.stringify({ model: 'm', stream: true,
      messages: [{ role: 'user', content: 'x'.repeat(10 * (seed % 41)) }], mock: { topic, seed } }),
  });
  const s = await readStream(res);
  const end = Date.now();
  assert.equal(res.status, 200);
  assert.ok(s.text.endsWith('data: [DONE]\n\n'), s.text.slice(-200));
  return { mode, topic, seed, start_ms: start - 5, end_ms: end + 5 };
}

test('an on-path observer tells topics apart without shaping, and not with the defaults',
  { skip, timeout: 300000 }, async () => {
    // Warm up (and prove the path): the client has no route to the host.
    for (const c of [off, on]) await trace(c, 'warm', 'a', 999);
    for (const c of [off, on]) {
      const st = await (await fetch(`http://10.213.0.2:${c.consolePort}/api/status`)).json();
      assert.equal(st.peers.find((p) => p.models.includes('m')).link, 'relay');
    }
    const ports = { off: linkPort(off.pid), on: linkPort(on.pid) };
    assert.ok(ports.off && ports.on && ports.off !== ports.on, JSON.stringify(ports));
    const hostShaped0 = nsJSON(`${P}H`, `http://127.0.0.1:${host.consolePort}/api/status`).shaping.streams;
    // Both clients at once (each on its own link), one completion at a
    // time each, the topics alternating.
    const traces = [];
    await Promise.all([['off', off], ['on', on]].map(async ([mode, node]) => {
      for (let i = 1; i <= PER_TOPIC; i++) {
        for (const topic of (i % 2 ? ['a', 'b'] : ['b', 'a'])) {
          traces.push(await trace(node, mode, topic, i));
          await sleep(40);
        }
      }
    }));
    await sleep(300);
    dump.kill('SIGINT');
    await new Promise((r) => (dump.exitCode !== null ? r() : dump.once('exit', r)));
    // The host shaped exactly the completions of the default client.
    const hs = nsJSON(`${P}H`, `http://127.0.0.1:${host.consolePort}/api/status`).shaping;
    assert.equal(hs.streams - hostShaped0, 2 * PER_TOPIC);
    assert.ok(hs.padding_frames > 0);
    const job = path.join(path.dirname(pcap), 'job.json');
    writeFileSync(job, JSON.stringify({ pcap, relay_port: 9338, ports, traces }));
    const r = spawnSync(PY, [path.join(here, 'shape_classify.py'), job], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(r.stdout);
    console.log(`# shape classifier: ${JSON.stringify(res)}`);
    assert.ok(res.off.records_per_trace_min >= 5, 'the observer sees each unshaped completion');
    assert.ok(res.on.records_per_trace_min >= 5, 'the observer sees each shaped completion');
    // Nothing between the envelope and the wire undoes the padding: one
    // record size for (nearly) every request, whatever the prompt length,
    // and for the shaped answers' frames (the rest: gossip, merged frames).
    for (const mode of ['off', 'on']) {
      assert.ok(res[mode].request_modal_share >= 0.8, `${mode}: requests in one record size`);
    }
    assert.ok(res.on.modal_record_share >= 0.8, 'shaped answers: one record size');
    assert.ok(res.off.modal_record_share < 0.5, 'control: unshaped answer records vary in size');
    assert.ok(res.off.auc >= 0.9, `shaping off: the leak is visible (AUC ${res.off.auc})`);
    assert.ok(res.on.auc <= 0.6, `defaults: topics hidden (AUC ${res.on.auc})`);
  });
