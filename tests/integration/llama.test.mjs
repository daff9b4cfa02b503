// A real llama-server (built from the llama.cpp source that node-llama-cpp
// ships) with a tiny random-weight GGUF, spawned and supervised by
// `sealmesh serve --gguf`. Output is gibberish; inference and protocol are real.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { postJSON, readStream, startNode, stopAll, waitFor } from './lib.mjs';

let node;
let llama;

function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()
      .split(/\s+/).filter(Boolean).map(Number);
  } catch { return []; }
}

// The llama-server processes under the node: children of its worker under
// privilege separation (doc/PRIVSEP.md), of the node itself without it.
function llamaPids(pid) {
  const out = [];
  for (const c of childPids(pid)) {
    let cmd = '';
    try { cmd = readFileSync(`/proc/${c}/cmdline`, 'utf8'); } catch { continue; }
    if (cmd.split('\0')[0].endsWith('llama-server')) out.push(c);
    else out.push(...llamaPids(c));
  }
  return out;
}

before(async () => {
  // Builds once per machine (minutes), then answers from the cache.
  const out = execFileSync('scripts/build-llama.sh', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  llama = Object.fromEntries(out.trim().split('\n').slice(-2).map((l) => l.split('=')));
  node = await startNode(['--gguf', llama.TINY_GGUF, '--llama-server', llama.LLAMA_SERVER]);
  await waitFor(async () => {
    const r = await postJSON(`${node.api}/chat/completions`,
      { model: 'tiny', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] });
    return r.status === 200;
  }, { timeoutMs: 120000, intervalMs: 250, what: 'llama-server ready' });
}, { timeout: 900000 });
after(stopAll);

test('the model is listed under the GGUF file stem', async () => {
  const ids = (await (await fetch(`${node.api}/models`)).json()).data.map((m) => m.id);
  assert.deepEqual(ids, ['tiny']);
});

test('chat completion from the real llama-server', async () => {
  const r = await postJSON(`${node.api}/chat/completions`,
    { model: 'tiny', max_tokens: 8, messages: [{ role: 'user', content: 'Say hello' }] });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.object, 'chat.completion');
  assert.equal(typeof r.json.choices[0].message.content, 'string');
  assert.ok(r.json.usage.completion_tokens > 0);
});

test('streaming chat from the real llama-server', async () => {
  const res = await fetch(`${node.api}/chat/completions`, {
    method: 'POST',
    body: JSON.stringify({ model: 'tiny', max_tokens: 8, stream: true,
      messages: [{ role: 'user', content: 'Say hello' }] }),
  });
  assert.equal(res.status, 200);
  // The tiny model writes its tokens within a millisecond, so they may come
  // in one read; liveness is tested with the paced mock backend.
  const { text } = await readStream(res);
  const events = text.split('\n').filter((l) => l.startsWith('data: '));
  assert.equal(events.at(-1), 'data: [DONE]');
  assert.ok(events.length >= 3, text);
  assert.equal(JSON.parse(events[0].slice(6)).object, 'chat.completion.chunk');
});

test('a llama-server that dies is restarted', async () => {
  const [pid] = llamaPids(node.pid);
  assert.ok(pid, 'llama-server runs under the node');
  process.kill(pid, 'SIGKILL');
  await waitFor(async () => {
    const kids = llamaPids(node.pid);
    if (!kids.length || kids[0] === pid) return false;
    const r = await postJSON(`${node.api}/chat/completions`,
      { model: 'tiny', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] });
    return r.status === 200;
  }, { timeoutMs: 60000, intervalMs: 250, what: 'restart' });
});

test('stopping the node stops llama-server', async () => {
  const [pid] = llamaPids(node.pid);
  assert.ok(pid);
  await node.stop();
  await waitFor(() => {
    try { process.kill(pid, 0); return false; } catch { return true; }
  }, { timeoutMs: 10000, what: 'child exit' });
});
