// Test harness: start real sealmesh nodes and the mock backend on loopback,
// talk to them over real sockets, stop everything afterwards.
import { spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync, closeSync as fsCloseSync, mkdtempSync, openSync as fsOpenSync, readFileSync,
  readSync as fsReadSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const BUILD = path.resolve(process.env.SM_BUILD || 'build');
export const SEALMESH = process.env.SM_BIN || path.join(BUILD, 'sealmesh');
export const TEST_SEALMESH = path.join(BUILD, 'test', 'sealmesh');
export const MOCK = path.join(BUILD, 'fixtures', 'mock_backend');

const procs = new Set();
const allProcs = [];
// Sanitizer builds: a report from any process we started fails the suite.
// Leaks at exit are not checked here (the unit tests check them).
const SAN_ENV = { ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1' };
const SAN_RE = /ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer/;

// A port nobody listens on right now (for tests that restart a process on
// the same port).
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function tmpdir(prefix = 'sm-') {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

// Spawn a process; resolve once a stdout line matches 're'.
export function startProcess(bin, args, re, { env, timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      env: { ...SAN_ENV, ...(env ?? process.env) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.add(child);
    const p = { child, pid: child.pid, stdout: '', stderr: '', exited: null, name: path.basename(bin) };
    allProcs.push(p);
    const timer = setTimeout(() => {
      reject(new Error(`${path.basename(bin)} did not start: ${p.stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (d) => {
      p.stdout += d;
      const m = p.stdout.match(re);
      if (m && !p.match) {
        p.match = m;
        clearTimeout(timer);
        resolve(p);
      }
    });
    child.stderr.on('data', (d) => {
      p.stderr += d;
      // Kept for the test runner, which prints them when a suite fails.
      if (process.env.SM_TEST_LOGS) {
        appendFileSync(path.join(process.env.SM_TEST_LOGS, `${p.name}-${child.pid}.log`), d);
      }
    });
    child.on('exit', (code, sig) => {
      procs.delete(child);
      p.exited = { code, sig };
      clearTimeout(timer);
      if (!p.match) reject(new Error(`${path.basename(bin)} exited ${code} ${sig}: ${p.stderr}`));
    });
    p.stop = (sig = 'SIGTERM') => stopProcess(p, sig);
  });
}

export function stopProcess(p, sig = 'SIGTERM') {
  return new Promise((resolve) => {
    if (p.exited) return resolve(p.exited);
    p.child.once('exit', (code, s) => resolve({ code, sig: s }));
    p.child.kill(sig);
    setTimeout(() => { if (!p.exited) p.child.kill('SIGKILL'); }, 5000).unref();
  });
}

export async function stopAll() {
  await Promise.all([...procs].map((c) => new Promise((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', resolve);
    c.kill('SIGTERM');
    setTimeout(() => c.kill('SIGKILL'), 5000).unref();
  })));
  const bad = allProcs.filter((p) => SAN_RE.test(p.stderr));
  if (bad.length) {
    throw new Error(`sanitizer reports:\n${bad.map((p) => `--- ${p.name} ${p.pid}\n${p.stderr}`).join('\n')}`);
  }
}

export async function startMock(args = [], { netns } = {}) {
  const a = args.includes('--port') ? args : ['--port', '0', ...args];
  const p = netns
    ? await startProcess('ip', ['netns', 'exec', netns, MOCK, ...a], /listening on (\d+)/)
    : await startProcess(MOCK, a, /listening on (\d+)/);
  p.port = Number(p.match[1]);
  p.url = `http://127.0.0.1:${p.port}`;
  p.stats = netns
    ? async () => JSON.parse(nsGet(netns, `${p.url}/mock/stats`))
    : async () => (await fetch(`${p.url}/mock/stats`)).json();
  return p;
}

// Start `sealmesh serve` (or `client`) with ephemeral ports on loopback and
// its own state dir. Options: cmd, bin, env, stateDir, netns.
export async function startNode(args = [], { bin = SEALMESH, env, stateDir, cmd = 'serve', netns } = {}) {
  const dir = stateDir ?? tmpdir('sm-node-');
  const defaults = [];
  if (!args.includes('--mesh-port')) defaults.push('--mesh-port', '0');
  if (!args.includes('--bind')) defaults.push('--bind', '127.0.0.1');
  if (cmd === 'serve') defaults.push('--state-dir', dir);
  let argv = [cmd, '--port', '0', '--console', '0', ...defaults, ...args];
  let exe = bin;
  if (netns) { argv = ['netns', 'exec', netns, bin, ...argv]; exe = 'ip'; }
  const p = await startProcess(exe, argv,
    /api http:\/\/[^:]+:(\d+)\/v1 console http:\/\/[^:]+:(-?\d+) mesh (\d+)\nsealmesh: token (\S+)\n/, { env });
  p.apiPort = Number(p.match[1]);
  p.consolePort = Number(p.match[2]);
  p.meshPort = Number(p.match[3]);
  p.token = p.match[4];
  p.api = `http://127.0.0.1:${p.apiPort}/v1`;
  p.console = `http://127.0.0.1:${p.consolePort}`;
  p.stateDir = dir;
  p.status = async () => (await fetch(`${p.console}/api/status`)).json();
  p.metrics = async () => (await fetch(`${p.console}/metrics`)).text();
  // The node's memory: the process started and its children (under
  // privilege separation the signer and its worker; doc/PRIVSEP.md).
  p.rss = () => {
    const one = (pid) => {
      try {
        const s = readFileSync(`/proc/${pid}/status`, 'utf8');
        return Number(s.match(/VmRSS:\s+(\d+)/)[1]) * 1024;
      } catch { return 0; }
    };
    let kids = [];
    try { kids = readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean); } catch { /* gone */ }
    return one(p.pid) + kids.reduce((a, k) => a + one(k), 0);
  };
  return p;
}

export function chatBody(model, extra = {}) {
  return JSON.stringify({
    model,
    messages: [{ role: 'user', content: 'hello' }],
    ...extra,
  });
}

export async function postJSON(url, body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

// Read a streaming response, recording when each chunk arrived.
export async function readStream(res) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  const chunks = [];
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const s = dec.decode(value, { stream: true });
    chunks.push({ at: performance.now(), s });
    text += s;
  }
  return { text, chunks };
}

// The completion text carried by an OpenAI SSE stream of chat chunks.
export function sseContent(text) {
  let out = '';
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const ev = JSON.parse(line.slice(6));
    if (ev.error) throw new Error(`stream error: ${ev.error.message}`);
    const c = ev.choices?.[0];
    out += c?.delta?.content ?? c?.text ?? '';
  }
  return out;
}

export function expectedTokens(n, prefix = '') {
  let s = prefix;
  for (let i = 0; i < n; i++) s += `tok${i} `;
  return s;
}

// "created" is a clock reading; everything else must match byte for byte.
export function normalize(text) {
  return text.replace(/"created(_at)?":\d+/g, '"created$1":0');
}

// A raw HTTP/1.1 exchange over one TCP connection.
export function rawConnect(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => resolve(sock));
    sock.on('error', reject);
  });
}

export function readUntil(sock, pred, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    let acc = '';
    const timer = setTimeout(() => { cleanup(); reject(new Error(`timeout; got: ${acc}`)); }, timeoutMs);
    const onData = (d) => { acc += d; if (pred(acc)) { cleanup(); resolve(acc); } };
    const onEnd = () => { cleanup(); resolve(acc); };
    function cleanup() {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
    }
    sock.on('data', onData);
    sock.on('end', onEnd);
  });
}

// Network namespaces made (and removed) by a test: each entry of 'links' is
// [nsA, addrA, nsB, addrB] for a veth pair (nsA null = this namespace).
export function netnsSetup(prefix, names, links) {
  const sh = (cmd) => {
    const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  };
  for (const n of names) {
    sh(`ip netns add ${prefix}${n}`);
    sh(`ip -n ${prefix}${n} link set lo up`);
  }
  links.forEach(([a, aAddr, b, bAddr], i) => {
    const va = `${prefix}a${i}`; const vb = `${prefix}b${i}`;
    sh(`ip link add ${va} type veth peer name ${vb}`);
    for (const [ns, dev, addr] of [[a, va, aAddr], [b, vb, bAddr]]) {
      const pre = ns ? `ip -n ${prefix}${ns}` : 'ip';
      if (ns) sh(`ip link set ${dev} netns ${prefix}${ns}`);
      sh(`${pre} addr add ${addr}/24 dev ${dev}`);
      sh(`${pre} link set ${dev} up`);
    }
  });
  return () => {
    links.forEach((_, i) => spawnSync('ip', ['link', 'del', `${prefix}a${i}`]));
    for (const n of names) spawnSync('ip', ['netns', 'del', `${prefix}${n}`]);
  };
}

// fetch() run inside a namespace (curl), for consoles we cannot reach.
export function nsGet(ns, url, body) {
  const args = ['netns', 'exec', ns, 'curl', '-s', '--max-time', '5', url];
  if (body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', body);
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return r.stdout;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(intervalMs);
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

// The pids of a process's children (under privilege separation a node's
// worker is the child of the process started, doc/PRIVSEP.md).
export function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()
      .split(/\s+/).filter(Boolean).map(Number);
  } catch { return []; }
}

// Which of 'needles' occur in the anonymous memory of process 'pid' (heap,
// stack, anonymous mappings, PROT_NONE pages included: /proc/PID/mem reads
// them for root). Huge mappings (sanitizer shadow) are skipped.
export function scanMemory(pid, needles) {
  const found = new Set();
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n');
  const fd = fsOpenSync(`/proc/${pid}/mem`, 'r');
  try {
    for (const line of maps) {
      const [range, , , , inode, name = ''] = line.trim().split(/\s+/);
      if (inode !== '0' || /\[(vvar|vsyscall|vdso)\]/.test(name)) continue;
      const [lo, hi] = range.split('-').map((h) => BigInt(`0x${h}`));
      const len = Number(hi - lo);
      if (len > 64 * 2 ** 20) continue;
      const buf = Buffer.alloc(len);
      let got = 0;
      try { got = fsReadSync(fd, buf, 0, len, lo); } catch { continue; }
      const view = buf.subarray(0, got);
      for (const [label, n] of Object.entries(needles)) if (view.indexOf(n) >= 0) found.add(label);
    }
  } finally { fsCloseSync(fd); }
  return [...found].sort();
}

