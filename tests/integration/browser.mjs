// A headless Chromium driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: commands on fd 3, events and answers on fd 4,
// each JSON message ended by a NUL byte). No WebSocket, no npm package.
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

import { tmpdir } from './lib.mjs';

export function findChromium() {
  for (const bin of ['chromium', 'chromium-browser', 'google-chrome']) {
    const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
    if (r.status === 0) return r.stdout.trim();
  }
  return null;
}

export async function launchBrowser({ bin = findChromium() } = {}) {
  if (!bin) throw new Error('chromium not found: run scripts/install-deps.sh');
  const profile = tmpdir('sm-chromium-');
  const child = spawn(bin, ['--headless=new', '--no-sandbox', '--disable-gpu',
    '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
    '--disable-extensions', '--disable-background-networking', '--remote-debugging-pipe',
    `--user-data-dir=${profile}`, 'about:blank'],
  { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const pending = new Map();
  const listeners = new Set();
  let nextId = 1;
  let buf = Buffer.alloc(0);
  child.stdio[4].on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    let i;
    while ((i = buf.indexOf(0)) >= 0) {
      const msg = JSON.parse(buf.subarray(0, i).toString('utf8'));
      buf = buf.subarray(i + 1);
      if (msg.id !== undefined && pending.has(msg.id)) {
        const { resolve, reject } = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.error) reject(new Error(`CDP: ${msg.error.message}`));
        else resolve(msg.result);
      } else {
        for (const l of listeners) l(msg);
      }
    }
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.on('exit', () => {
    for (const { reject } of pending.values()) reject(new Error(`chromium exited: ${stderr.slice(-2000)}`));
    pending.clear();
  });
  const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    child.stdio[3].write(`${JSON.stringify({ id, method, params, sessionId })}\0`);
  });

  // One page (tab) with its own session.
  async function newPage(url, { width = 1280, height = 900, mobile = false, scale = 1 } = {}) {
    const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
    const s = (method, params) => send(method, params, sessionId);
    await s('Page.enable');
    await s('Runtime.enable');
    await s('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: scale, mobile });
    const consoleErrors = [];
    const onEvent = (m) => {
      if (m.sessionId !== sessionId) return;
      if (m.method === 'Runtime.exceptionThrown') consoleErrors.push(m.params.exceptionDetails.text + ' ' + (m.params.exceptionDetails.exception?.description ?? ''));
      if (m.method === 'Runtime.consoleAPICalled' && m.params.type === 'error') consoleErrors.push(m.params.args.map((a) => a.value ?? a.description).join(' '));
      if (m.method === 'Log.entryAdded' && m.params.entry.level === 'error') consoleErrors.push(m.params.entry.text);
    };
    listeners.add(onEvent);
    await s('Log.enable');
    const loaded = new Promise((resolve) => {
      const l = (m) => { if (m.sessionId === sessionId && m.method === 'Page.loadEventFired') { listeners.delete(l); resolve(); } };
      listeners.add(l);
    });
    await s('Page.navigate', { url });
    await loaded;
    return {
      consoleErrors,
      // Evaluate an expression in the page; its JSON-able value.
      async eval(expression) {
        const r = await s('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
        if (r.exceptionDetails) throw new Error(`page: ${r.exceptionDetails.text} ${r.exceptionDetails.exception?.description ?? ''}`);
        return r.result.value;
      },
      async screenshot() {
        const { data } = await s('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true });
        return Buffer.from(data, 'base64');
      },
      async setSize(w, h, mob = false) {
        await s('Emulation.setDeviceMetricsOverride', { width: w, height: h, deviceScaleFactor: scale, mobile: mob });
      },
      close: () => send('Target.closeTarget', { targetId }),
    };
  }

  return {
    newPage,
    async close() {
      try { await Promise.race([send('Browser.close'), new Promise((r) => setTimeout(r, 3000))]); } catch { /* gone */ }
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      // Chromium's helper processes can outlive the browser by a moment and
      // still write into the profile: retry, and never fail a test on it.
      try {
        rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
      } catch { /* a temporary directory left behind */ }
    },
  };
}
