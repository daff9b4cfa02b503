// bench/report.mjs: turn the raw cells written by bench/run.sh into the
// table `make bench` prints and the JSON kept in bench/results/.
//
// usage: node bench/report.mjs --raw RAW.jsonl --out FILE.json
//            [--latest latest.json] [--meta JSON] [--strict 0|1]
//
// Each cell (target x scenario x concurrency) is the median, metric by
// metric, of its repetitions. Ratios are sealmesh/direct and sealmesh/nginx
// of those medians: below 1 is better for TTFB, above 1 for tok/s and req/s.
import { readFileSync, writeFileSync, renameSync } from 'node:fs';

const GOAL_RSS_KIB = 48;
const SUBJECT = 'sealmesh';
const BASELINES = ['direct', 'nginx'];
// Mesh rows: end-to-end encryption against the same path in plaintext, and
// the mesh path against the local gateway.
const PAIRS = [['mesh-e2e', 'mesh-plain'], ['relay-e2e', 'relay-plain'], ['mesh-plain', 'sealmesh'],
  ['mesh-e2e-v1', 'mesh-plain'], ['mesh-e2e', 'mesh-e2e-v1'], ['mesh-shaped', 'mesh-e2e'],
  ['mesh-e2e', 'mesh-e2e-1p'], ['mesh-e2e-v1', 'mesh-e2e-v1-1p']];
const GOAL_E2E_TTFT = 1.05; // E2E TTFT p50 <= 1.05x plaintext
const GOAL_PRIVSEP_TTFT = 1.1; // privsep TTFT p50 <= 1.1x the same host as one process (c=64 is the issue's goal)
const GOAL_E2E_TOKS = 0.95; // E2E tok/s at 256 streams >= 0.95x plaintext
const GOAL_E2E_RPS = 0.8; // E2E non-streamed req/s >= 0.8x plaintext
const METRICS = ['ttfb_p50_ms', 'ttfb_p99_ms', 'total_p50_ms', 'tokens_per_s', 'rps'];

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
if (!args.raw || !args.out) {
  console.error('usage: report.mjs --raw RAW.jsonl --out FILE.json [--latest F] [--meta JSON] [--strict 0|1]');
  process.exit(2);
}
const meta = args.meta ? JSON.parse(args.meta) : {};
const lines = readFileSync(args.raw, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const ratio = (a, b) => (a == null || b == null || b === 0 ? null : a / b);
const round = (x, d = 3) => (x == null ? null : Number(x.toFixed(d)));

// scenario -> concurrency -> target -> [results]
const cells = {};
const byCpu = {};
const targets = [];
for (const l of lines) {
  if (l.kind !== 'cell') continue;
  if (!targets.includes(l.target)) targets.push(l.target);
  const s = (cells[l.scenario] ??= {});
  const c = (s[l.concurrency] ??= {});
  (c[l.target] ??= []).push(l.result);
  const bc = ((byCpu[l.scenario] ??= {})[l.concurrency] ??= {});
  (bc[l.target] ??= []).push(l.cpu_s ?? null);
}

const out = { meta, goals: {}, scenarios: {}, rss: {}, scale: {} };
for (const [scen, byConc] of Object.entries(cells)) {
  out.scenarios[scen] = {};
  for (const [conc, byTarget] of Object.entries(byConc)) {
    const row = { targets: {}, ratios: {} };
    for (const [t, reps] of Object.entries(byTarget)) {
      const ok = reps.filter((r) => r != null);
      const m = { reps: reps.length, failed_reps: reps.length - ok.length };
      for (const k of METRICS) m[k] = round(median(ok.map((r) => r[k])));
      // CPU of the row's own process (the mock for direct, the proxy
      // otherwise) as % of one core, and per request.
      const cpu = reps.map((r, i) => ({ r, c: byCpu[scen][conc][t][i] })).filter((x) => x.r && x.c != null);
      m.cpu_pct = round(median(cpu.map((x) => (100 * x.c) / x.r.duration_s)), 1);
      m.cpu_us_per_req = round(median(cpu.map((x) => (1e6 * x.c) / Math.max(1, x.r.requests))), 1);
      m.requests = ok.reduce((a, r) => a + r.requests, 0);
      m.errors = ok.reduce((a, r) => a + r.errors, 0);
      row.targets[t] = m;
    }
    for (const [a, b] of [...BASELINES.map((b) => [SUBJECT, b]), ...PAIRS]) {
      if (!row.targets[a] || !row.targets[b]) continue;
      const r = {};
      for (const k of METRICS) r[k] = round(ratio(row.targets[a][k], row.targets[b][k]));
      row.ratios[`${a}/${b}`] = r;
    }
    out.scenarios[scen][conc] = row;
  }
}

for (const l of lines) {
  if (l.kind !== 'rss') continue;
  out.rss[l.target] = {
    streams: l.streams,
    idle_kib: l.idle_kib,
    busy_kib: l.busy_kib,
    per_stream_kib: round((l.busy_kib - l.idle_kib) / l.streams, 1),
    streams_seen_at_once: l.loadgen?.max_streaming ?? null,
  };
}

// Scale rows: N streams at once, local gateway and one mesh hop (E2E).
const GOAL_SCALE_TTFB = 2; // one hop TTFB p50 <= 2x the local gateway's
const GOAL_SCALE_RSS_KIB = 32; // per stream, on each node
for (const l of lines) {
  if (l.kind !== 'scale') continue;
  const r = l.result;
  const nodes = {};
  for (const [node, v] of Object.entries(l.rss ?? {})) {
    nodes[node] = {
      idle_kib: v.idle_kib,
      busy_kib: v.busy_kib,
      per_stream_kib: v.busy_kib == null ? null : round((v.busy_kib - v.idle_kib) / l.streams, 1),
    };
  }
  (out.scale[l.group] ??= { targets: {} }).targets[l.target] = {
    streams: l.streams,
    all_at_once: l.all_at_once,
    most_at_once: r?.max_streaming ?? null,
    tokens: l.tokens,
    delay_ms: l.delay_ms,
    requests: r?.requests ?? null,
    errors: r?.errors ?? null,
    ttfb_p50_ms: r?.ttfb_p50_ms ?? null,
    ttfb_p99_ms: r?.ttfb_p99_ms ?? null,
    total_p50_ms: r?.total_p50_ms ?? null,
    nodes,
  };
}
const scaleGoals = {};
for (const [n, g] of Object.entries(out.scale)) {
  const hop = g.targets['mesh-e2e'];
  const loc = g.targets[SUBJECT];
  g.ttfb_p50_ratio = round(ratio(hop?.ttfb_p50_ms, loc?.ttfb_p50_ms));
  // The mock waits delay_ms before the first token too: the part of TTFB
  // each path adds is what lies above it.
  const over = (m) => (m?.ttfb_p50_ms == null ? null : m.ttfb_p50_ms - m.delay_ms);
  g.ttfb_p50_over_delay_ratio = round(ratio(over(hop), over(loc)));
  const rss = hop ? Object.values(hop.nodes).map((x) => x.per_stream_kib) : [];
  scaleGoals[n] = {
    errors: hop?.errors ?? null,
    errors_met: hop != null && hop.errors === 0 && hop.requests === Number(n),
    ttfb_p50_ratio: g.ttfb_p50_ratio,
    ttfb_p50_over_delay_ratio: g.ttfb_p50_over_delay_ratio,
    local_streams: loc?.streams ?? null,
    ttfb_met: g.ttfb_p50_ratio != null && g.ttfb_p50_ratio <= GOAL_SCALE_TTFB,
    rss_per_stream_kib: hop?.nodes ?? null,
    rss_met: rss.length > 0 && rss.every((x) => x != null && x <= GOAL_SCALE_RSS_KIB),
  };
}
out.goals.scale_one_hop = scaleGoals;

// Goals: TTFT p50 (stream scenario) no worse than nginx's; RSS per stream.
const ttft = {};
for (const [conc, row] of Object.entries(out.scenarios.stream ?? {})) {
  const s = row.targets[SUBJECT]?.ttfb_p50_ms;
  const n = row.targets.nginx?.ttfb_p50_ms;
  ttft[conc] = { sealmesh_ms: s, nginx_ms: n, met: s != null && n != null && s <= n };
}
out.goals.ttft_p50_le_nginx = ttft;
const e2e = {};
for (const [a, b] of PAIRS.slice(0, 2)) {
  for (const [conc, row] of Object.entries(out.scenarios.stream ?? {})) {
    const r = row.ratios[`${a}/${b}`];
    if (!r) continue;
    const g = { ttfb_p50_ratio: r.ttfb_p50_ms, ttft_met: r.ttfb_p50_ms != null && r.ttfb_p50_ms <= GOAL_E2E_TTFT };
    if (Number(conc) === 256) {
      g.tokens_per_s_ratio = r.tokens_per_s;
      g.tokens_met = r.tokens_per_s != null && r.tokens_per_s >= GOAL_E2E_TOKS;
    }
    (e2e[a] ??= {})[conc] = g;
  }
}
out.goals.e2e_vs_plaintext = e2e;
const e2eRps = {};
for (const [conc, row] of Object.entries(out.scenarios.nostream ?? {})) {
  const r = row.ratios['mesh-e2e/mesh-plain'];
  if (r) e2eRps[conc] = { rps_ratio: r.rps, met: r.rps != null && r.rps >= GOAL_E2E_RPS };
}
out.goals.e2e_rps_vs_plaintext = e2eRps;
// Privilege separation (doc/PRIVSEP.md): the host's keys in its signer
// (mesh-e2e) against the same host as one process (mesh-e2e-1p).
const privsep = {};
for (const scen of ['stream', 'nostream']) {
  for (const [conc, row] of Object.entries(out.scenarios[scen] ?? {})) {
    const r = row.ratios['mesh-e2e/mesh-e2e-1p'];
    if (!r) continue;
    const g = (privsep[conc] ??= {});
    if (scen === 'stream') {
      g.ttfb_p50_ratio = r.ttfb_p50_ms;
      g.ttft_met = r.ttfb_p50_ms != null && r.ttfb_p50_ms <= GOAL_PRIVSEP_TTFT;
    } else g.rps_ratio = r.rps;
  }
}
out.goals.privsep_vs_one_process = privsep;
const rssS = out.rss[SUBJECT];
out.goals.rss_per_stream_le_48kib = {
  per_stream_kib: rssS?.per_stream_kib ?? null,
  goal_kib: GOAL_RSS_KIB,
  met: rssS != null && rssS.per_stream_kib <= GOAL_RSS_KIB,
};
out.raw = lines;

// ---- the table ----
const f = (x, d = 2) => (x == null ? '-' : x.toFixed(d));
const pad = (s, n) => String(s).padStart(n);
const padr = (s, n) => String(s).padEnd(n);
const titles = {
  stream: `stream: ${meta.stream?.tokens ?? '?'} tokens, ${meta.stream?.delay_ms ?? '?'} ms apart (TTFB = first SSE event)`,
  nostream: `nostream: small non-streamed chat, ${meta.nostream?.tokens ?? '?'} tokens, no delay`,
  big8m: 'big8m: one ~8 MiB request at a time through the relay (TTFB = whole body sent and answer begun)',
};
const p = (s = '') => process.stdout.write(`${s}\n`);
p();
p(`sealmesh bench ${meta.time_utc ?? ''}  (${meta.cores ?? '?'} cores shared by load generator, mock, proxies; nothing pinned;`);
p(`median of ${meta.reps ?? '?'} x ${meta.duration_s ?? '?'} s per cell, rows measured alternately; numbers are noisy;`);
p('CPU% = the row\'s own process as % of one core: the mock for direct, the proxy alone for nginx/sealmesh)');
for (const [scen, byConc] of Object.entries(out.scenarios)) {
  p();
  p(titles[scen] ?? scen);
  p(`${padr('conc', 5)} ${padr('row', 16)} ${pad('TTFB p50 ms', 11)} ${pad('TTFB p99 ms', 11)} ${pad('total p50', 10)} ${pad('tok/s', 10)} ${pad('req/s', 10)} ${pad('errors', 7)} ${pad('CPU%', 6)}`);
  for (const [conc, row] of Object.entries(byConc).sort((a, b) => a[0] - b[0])) {
    let first = true;
    for (const t of targets) {
      const m = row.targets[t];
      if (!m) continue;
      p(`${padr(first ? conc : '', 5)} ${padr(t, 16)} ${pad(f(m.ttfb_p50_ms, 3), 11)} ${pad(f(m.ttfb_p99_ms, 3), 11)} ${pad(f(m.total_p50_ms, 2), 10)} ${pad(f(m.tokens_per_s, 0), 10)} ${pad(f(m.rps, 0), 10)} ${pad(m.errors, 7)} ${pad(f(m.cpu_pct, 0), 6)}`);
      first = false;
    }
    for (const [name, r] of Object.entries(row.ratios)) {
      p(`${padr('', 5)} ${padr(name, 22)} ${pad(f(r.ttfb_p50_ms) + 'x', 5)} ${pad(f(r.ttfb_p99_ms) + 'x', 11)} ${pad(f(r.total_p50_ms) + 'x', 10)} ${pad(f(r.tokens_per_s) + 'x', 10)} ${pad(f(r.rps) + 'x', 10)}`);
    }
  }
}
p();
p(`RSS per stream (${meta.rss?.tokens ?? '?'} tokens ${meta.rss?.delay_ms ?? '?'} ms apart, held open; (RSS busy - RSS idle after warm-up) / streams)`);
for (const [t, r] of Object.entries(out.rss)) {
  p(`  ${padr(t, 10)} ${pad(r.per_stream_kib.toFixed(1), 7)} KiB/stream  (idle ${r.idle_kib} KiB, with ${r.streams} streams ${r.busy_kib} KiB${t === 'nginx' ? ', master + worker' : ''})`);
}
if (Object.keys(out.scale).length > 0) {
  p();
  p(`scale: N streams at once (${meta.scale?.tokens ?? '?'} tokens ${meta.scale?.delay_ms ?? '?'} ms apart); RSS = (VmRSS with all N streaming - before) / N per node`);
  p(`${padr('N', 6)} ${padr('row', 10)} ${pad('streams', 7)} ${pad('errors', 7)} ${pad('TTFB p50 ms', 11)} ${pad('TTFB p99 ms', 11)}  RSS KiB/stream`);
  for (const [n, g] of Object.entries(out.scale).sort((a, b) => a[0] - b[0])) {
    let first = true;
    for (const [t, m] of Object.entries(g.targets)) {
      const rss = Object.entries(m.nodes).map(([k, v]) => `${k} ${f(v.per_stream_kib, 1)}`).join(', ');
      p(`${padr(first ? n : '', 6)} ${padr(t, 10)} ${pad(m.streams, 7)} ${pad(m.errors ?? '-', 7)} ${pad(f(m.ttfb_p50_ms, 1), 11)} ${pad(f(m.ttfb_p99_ms, 1), 11)}  ${rss}${m.all_at_once ? '' : ' (never all at once)'}`);
      first = false;
    }
    p(`${padr('', 6)} mesh-e2e/sealmesh TTFB p50 ${f(g.ttfb_p50_ratio)}x; above the mock's first-token delay ${f(g.ttfb_p50_over_delay_ratio)}x`);
  }
}
p();
p('goals:');
for (const [n, g] of Object.entries(scaleGoals)) {
  p(`  ${n} streams through one hop, 0 errors: ${g.errors_met ? 'met   ' : 'MISSED'} (${g.errors ?? '-'} errors)`);
  p(`  ${n} streams: one hop TTFB p50 <= ${GOAL_SCALE_TTFB}x local gateway: ${g.ttfb_met ? 'met   ' : 'MISSED'} (${f(g.ttfb_p50_ratio)}x; above the first-token delay ${f(g.ttfb_p50_over_delay_ratio)}x${g.local_streams != null && g.local_streams !== Number(n) ? `; local gateway at ${g.local_streams}` : ''})`);
  p(`  ${n} streams: RSS per stream <= ${GOAL_SCALE_RSS_KIB} KiB on each node: ${g.rss_met ? 'met   ' : 'MISSED'}`);
}
for (const [conc, g] of Object.entries(ttft)) {
  p(`  TTFT p50 <= nginx at c=${pad(conc, 3)}: ${g.met ? 'met   ' : 'MISSED'} (sealmesh ${f(g.sealmesh_ms, 3)} ms, nginx ${f(g.nginx_ms, 3)} ms)`);
}
const rg = out.goals.rss_per_stream_le_48kib;
if (rssS) p(`  RSS per stream <= ${GOAL_RSS_KIB} KiB:     ${rg.met ? 'met   ' : 'MISSED'} (${rg.per_stream_kib ?? '-'} KiB)`);
for (const [conc, g] of Object.entries(privsep)) {
  if ('ttft_met' in g) p(`  privsep TTFT p50 <= ${GOAL_PRIVSEP_TTFT}x one process at c=${pad(conc, 3)}: ${g.ttft_met ? 'met   ' : 'MISSED'} (${f(g.ttfb_p50_ratio)}x; req/s ${f(g.rps_ratio)}x)`);
}
for (const [row, byConc] of Object.entries(e2e)) {
  for (const [conc, g] of Object.entries(byConc)) {
    p(`  ${row} TTFT p50 <= ${GOAL_E2E_TTFT}x plaintext at c=${pad(conc, 3)}: ${g.ttft_met ? 'met   ' : 'MISSED'} (${f(g.ttfb_p50_ratio)}x)`);
    if ('tokens_met' in g) p(`  ${row} tok/s >= ${GOAL_E2E_TOKS}x plaintext at c=256: ${g.tokens_met ? 'met   ' : 'MISSED'} (${f(g.tokens_per_s_ratio)}x)`);
  }
}
for (const [conc, g] of Object.entries(e2eRps)) {
  p(`  mesh-e2e non-streamed req/s >= ${GOAL_E2E_RPS}x plaintext at c=${pad(conc, 3)}: ${g.met ? 'met   ' : 'MISSED'} (${f(g.rps_ratio)}x)`);
}

const json = `${JSON.stringify(out, null, 2)}\n`;
writeFileSync(args.out, json);
if (args.latest) {
  writeFileSync(`${args.latest}.tmp`, json);
  renameSync(`${args.latest}.tmp`, args.latest);
}
p();
p(`wrote ${args.out}${args.latest ? ` and ${args.latest}` : ''}`);

const missed = Object.values(ttft).some((g) => !g.met) || (rssS != null && !rg.met)
  || Object.values(e2e).some((bc) => Object.values(bc).some((g) => !g.ttft_met || g.tokens_met === false))
  || Object.values(e2eRps).some((g) => !g.met);
if (args.strict === '1' && missed) process.exit(1);
