// The official OpenAI SDK (v6) against the gateway: chat, streaming chat,
// responses (plain and streamed), models, and errors surfacing as SDK errors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { expectedTokens, startMock, startNode, stopAll } from './lib.mjs';

let client;

before(async () => {
  const mock = await startMock(['--tokens', '7', '--delay-ms', '5']);
  const node = await startNode(['--model', `m=${mock.url}`]);
  client = new OpenAI({ baseURL: node.api, apiKey: 'unused', maxRetries: 0 });
});
after(stopAll);

test('models.list', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['m']);
});

test('chat.completions.create', async () => {
  const r = await client.chat.completions.create({
    model: 'm', messages: [{ role: 'user', content: 'hi' }],
  });
  assert.equal(r.choices[0].message.content, expectedTokens(7));
  assert.equal(r.choices[0].finish_reason, 'stop');
});

test('chat.completions.create with stream: true', async () => {
  const stream = await client.chat.completions.create({
    model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true,
  });
  let text = '';
  let events = 0;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    events++;
  }
  assert.equal(text, expectedTokens(7));
  assert.ok(events >= 7);
});

test('responses.create, plain and streamed', async () => {
  const r = await client.responses.create({ model: 'm', input: 'hi' });
  assert.equal(r.output_text, expectedTokens(7));
  const stream = await client.responses.create({ model: 'm', input: 'hi', stream: true });
  let text = '';
  for await (const ev of stream) {
    if (ev.type === 'response.output_text.delta') text += ev.delta;
  }
  assert.equal(text, expectedTokens(7));
});

test('errors surface as typed SDK errors', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'nope', messages: [] }),
    (e) => e instanceof OpenAI.NotFoundError && /serves this model/.test(e.message),
  );
});
