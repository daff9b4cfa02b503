// sealmesh console: polls this node's /api/status and /metrics and draws
// them. Hand-written, no dependencies. Every value that comes from the mesh
// (peer ids, model names, versions, reasons) is untrusted: it is only ever
// set as textContent or an attribute, never parsed as HTML.
'use strict';

(function () {
  const POLL_MS = 1000;
  const HISTORY = 120;
  const SVGNS = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);
  const series = { rps: [], ttft: [], streams: [] };
  let prev = null; // last metrics sample: {t, req, ttftSum, ttftCount}
  let updates = 0;
  let key = sessionStorage.getItem('sealmesh-key') || '';

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function short(id) { return typeof id === 'string' ? id.slice(0, 12) : '?'; }
  function yesno(v, good) {
    if (v === null || v === undefined) return el('span', 'unknown', 'muted');
    return el('span', v ? 'yes' : 'no', (v === good) ? 'ok' : 'bad');
  }
  function cell(tr, label, content, cls) {
    const td = el('td', null, cls);
    td.dataset.label = label;
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = content === null || content === undefined ? '—' : String(content);
    tr.appendChild(td);
    return td;
  }
  function headers() { return key ? { authorization: 'Bearer ' + key } : {}; }

  async function get(path) {
    const r = await fetch(path, { cache: 'no-store', headers: headers(), credentials: 'same-origin' });
    if (r.status === 401 || r.status === 403) {
      const e = new Error('this console needs an API key (' + r.status + ')');
      e.auth = true;
      throw e;
    }
    if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
    return r;
  }

  // --- this node ---------------------------------------------------------
  function renderSelf(st) {
    const dl = $('self');
    const rows = [
      ['node id', el('span', st.node_id, 'mono')],
      ['role', st.role],
      ['version', st.version],
      ['ports', 'api ' + st.api_port + ' · console ' + st.console_port + ' · mesh ' + st.mesh_port],
      ['models here', (st.models || []).join(', ') || '—'],
      ['relay for others', st.relay === undefined ? null : (st.relay ? 'yes' : 'no')],
      ['end-to-end', st.e2e ? 'sealed (key epoch ' + st.key_epoch + ')' : 'off'],
      ['posture', postureText(st.posture)],
      ['attestation', st.attestation ? st.attestation.provider : null],
      ['routing policy', policyText(st)],
      ['uptime', st.uptime !== undefined ? fmtDuration(st.uptime) : null],
    ];
    dl.replaceChildren();
    for (const [k, v] of rows) {
      dl.appendChild(el('dt', k));
      const dd = el('dd');
      if (v instanceof Node) dd.appendChild(v); else dd.textContent = v === null || v === undefined ? '—' : String(v);
      if (k === 'node id') dd.id = 'self-id';
      if (k === 'attestation') dd.id = 'self-attest';
      dl.appendChild(dd);
    }
  }
  function policyText(st) {
    const a = st.attestation || {};
    const parts = [];
    parts.push(a.require_attested_hosts ? 'attested hosts only (≥ ' + a.min_trust + ')' : 'any host');
    if (st.require_hardened) parts.push('hardened hosts only');
    if (st.allow_plaintext_peers) parts.push('plaintext peers allowed');
    return parts.join(' · ');
  }
  function postureText(p) {
    if (!p) return el('span', 'unknown', 'muted');
    const s = el('span', p.hardened ? 'hardened' : 'not hardened', p.hardened ? 'ok' : 'warn');
    const weak = [];
    if (p.env_clean === false) weak.push('loader variables set');
    if (p.dumpable !== false && p.dumpable !== null) weak.push('dumpable');
    if (p.core_dumps_disabled === false) weak.push('core dumps on');
    if (p.no_new_privs === false) weak.push('no_new_privs off');
    if (p.memory_locked === false) weak.push('memory not locked');
    if (p.debugger_attached) weak.push('debugger attached');
    if (weak.length) s.title = weak.join(', ');
    return s;
  }
  function fmtDuration(s) {
    s = Math.floor(s);
    if (s < 120) return s + ' s';
    if (s < 7200) return Math.floor(s / 60) + ' min';
    if (s < 172800) return Math.floor(s / 3600) + ' h';
    return Math.floor(s / 86400) + ' d';
  }

  // --- peers -------------------------------------------------------------
  function linkText(p) {
    if (p.link === 'relay') return 'relayed via ' + short(p.via);
    if (p.link === 'direct') return 'direct';
    return 'no link open';
  }
  function attLevel(p) { return (p.attestation && p.attestation.level) || 'none'; }
  function eligible(p) {
    if (p.route_eligible !== undefined) return p.route_eligible;
    return p.attestation ? p.attestation.eligible : null;
  }
  function refusal(p) {
    if (p.route_refusal) return p.route_refusal;
    return null;
  }

  function renderPeers(peers) {
    const tb = $('peers').tBodies[0];
    tb.replaceChildren();
    for (const p of peers) {
      const tr = el('tr');
      tr.dataset.peer = p.id;
      tr.dataset.link = p.link;
      tr.dataset.level = attLevel(p);
      tr.dataset.state = p.state;
      cell(tr, 'peer', el('span', short(p.id), 'mono')).title = p.id;
      cell(tr, 'role', p.role);
      cell(tr, 'link', linkText(p), 'link');
      cell(tr, 'RTT', p.rtt_ms === null || p.rtt_ms === undefined ? '—' : p.rtt_ms.toFixed(1) + ' ms');
      cell(tr, 'state', el('span', p.state, p.state === 'alive' ? 'ok' : 'warn'));
      cell(tr, 'E2E', p.e2e ? el('span', 'sealed', 'ok') : el('span', p.e2e_required ? 'key missing' : 'plaintext', 'bad'));
      const a = p.attestation || {};
      const att = el('span', attLevel(p), 'level');
      att.title = (a.status || '') + (a.reason ? ': ' + a.reason : '');
      const attCell = cell(tr, 'attestation', att);
      if (a.status && a.status !== 'verified') attCell.appendChild(el('div', a.reason || a.status, 'muted'));
      cell(tr, 'fresh', yesno(a.fresh === undefined ? null : a.fresh, true));
      const eg = eligible(p);
      tr.dataset.eligible = String(eg);
      if ((p.models || []).length === 0) {
        cell(tr, 'eligible', el('span', 'serves no model', 'muted'));
      } else {
        const ec = cell(tr, 'eligible', yesno(eg, true));
        if (eg === false && refusal(p)) ec.appendChild(el('div', refusal(p), 'why'));
      }
      cell(tr, 'posture', postureText(p.posture));
      cell(tr, 'models', (p.models || []).join(', ') || '—');
      tb.appendChild(tr);
    }
    $('nopeers').hidden = peers.length > 0;
    $('npeers').textContent = '(' + peers.length + ')';
  }

  // --- graph -------------------------------------------------------------
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function renderGraph(st, peers) {
    const g = $('graph');
    // A phone gets a taller, narrower drawing so labels stay readable.
    const narrow = (g.clientWidth || 600) < 500;
    const W = narrow ? 360 : 600, H = narrow ? 440 : 360, cx = W / 2, cy = H / 2;
    const rx = narrow ? W / 2 - 70 : W / 2 - 110, ry = H / 2 - 60;
    g.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    const pos = new Map();
    pos.set(st.node_id, [cx, cy]);
    const sorted = peers.slice().sort((a, b) => (a.id < b.id ? -1 : 1));
    // Start off the vertical axis so a relay edge does not run through
    // this node's own circle.
    const a0 = -Math.PI / 2 + Math.PI / Math.max(sorted.length, 1) / 2;
    sorted.forEach((p, i) => {
      const ang = a0 + (2 * Math.PI * i) / Math.max(sorted.length, 1);
      pos.set(p.id, [cx + rx * Math.cos(ang), cy + ry * Math.sin(ang)]);
    });
    g.replaceChildren();
    const lines = svg('g', {}), nodes = svg('g', {});
    g.appendChild(lines); g.appendChild(nodes);
    for (const p of sorted) {
      const to = pos.get(p.id);
      let e = null;
      if (p.link === 'direct') {
        const from = pos.get(st.node_id);
        e = svg('line', { x1: from[0], y1: from[1], x2: to[0], y2: to[1], class: 'direct' });
      } else if (p.link === 'relay') {
        // A curve from the relay to the host, bowed away from the centre.
        const from = pos.get(p.via) || pos.get(st.node_id);
        const mx = (from[0] + to[0]) / 2, my = (from[1] + to[1]) / 2;
        let dx = mx - cx, dy = my - cy;
        const d = Math.hypot(dx, dy);
        if (d < 1) { dx = -(to[1] - from[1]); dy = to[0] - from[0]; }
        const k = 60 / (Math.hypot(dx, dy) || 1);
        e = svg('path', { d: 'M' + from[0] + ' ' + from[1] + ' Q' + (mx + dx * k) + ' ' + (my + dy * k) + ' ' + to[0] + ' ' + to[1], class: 'relay' });
      }
      if (e) {
        e.dataset.peer = p.id;
        e.appendChild(svg('title', {}, linkText(p)));
        lines.appendChild(e);
      }
    }
    const node = (id, label, sub, cls) => {
      const [x, y] = pos.get(id);
      const c = svg('circle', { cx: x, cy: y, r: 16, class: cls });
      c.dataset.node = id;
      c.appendChild(svg('title', {}, id));
      nodes.appendChild(c);
      nodes.appendChild(svg('text', { x: x, y: y + 32, 'text-anchor': 'middle' }, label));
      if (sub) nodes.appendChild(svg('text', { x: x, y: y + 46, 'text-anchor': 'middle', class: 'sub' }, sub));
    };
    node(st.node_id, short(st.node_id) + ' (this node)', st.role, 'self');
    for (const p of sorted) {
      let cls = 'lv-' + attLevel(p).replace(/[^a-z_]/g, '');
      if (eligible(p) === false && (p.models || []).length) cls += ' refused';
      if (p.state !== 'alive') cls += ' stale';
      const rtt = p.rtt_ms === null || p.rtt_ms === undefined ? '' : ' · ' + p.rtt_ms.toFixed(1) + ' ms';
      node(p.id, short(p.id), p.role + ' · ' + attLevel(p) + rtt, cls);
    }
  }

  // --- models ------------------------------------------------------------
  function renderModels(st, peers) {
    const m = new Map();
    const add = (model, host, ok) => {
      if (!m.has(model)) m.set(model, { hosts: [], routable: false });
      const e = m.get(model);
      e.hosts.push(host);
      e.routable = e.routable || ok;
    };
    for (const model of st.models || []) add(model, 'this node', true);
    for (const p of peers)
      for (const model of p.models || []) add(model, short(p.id) + (eligible(p) === false ? ' (refused)' : ''), p.state === 'alive' && eligible(p) !== false);
    const tb = $('models').tBodies[0];
    tb.replaceChildren();
    for (const [model, e] of [...m.entries()].sort()) {
      const tr = el('tr');
      tr.dataset.model = model;
      tr.dataset.routable = e.routable;
      cell(tr, 'model', el('span', model, 'mono'));
      cell(tr, 'hosts', e.hosts.join(', '));
      cell(tr, 'routable now', yesno(e.routable, true));
      tb.appendChild(tr);
    }
    $('nomodels').hidden = m.size > 0;
  }

  // --- metrics and charts -------------------------------------------------
  function parseMetrics(text) {
    const out = { req: 0, ttftSum: 0, ttftCount: 0, streams: 0 };
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const sp = line.lastIndexOf(' ');
      const name = line.slice(0, sp), v = Number(line.slice(sp + 1));
      if (!Number.isFinite(v)) continue;
      if (name.startsWith('sealmesh_requests_total')) out.req += v;
      else if (name === 'sealmesh_ttft_seconds_sum') out.ttftSum = v;
      else if (name === 'sealmesh_ttft_seconds_count') out.ttftCount = v;
      else if (name === 'sealmesh_active_streams') out.streams = v;
    }
    return out;
  }
  function push(arr, v) { arr.push(v); if (arr.length > HISTORY) arr.shift(); }
  function sample(text) {
    const now = performance.now() / 1000;
    const m = parseMetrics(text);
    if (prev) {
      const dt = Math.max(now - prev.t, 0.001);
      const dn = m.ttftCount - prev.ttftCount;
      push(series.rps, Math.max(m.req - prev.req, 0) / dt);
      push(series.ttft, dn > 0 ? ((m.ttftSum - prev.ttftSum) / dn) * 1000 : null);
    }
    push(series.streams, m.streams);
    prev = { t: now, req: m.req, ttftSum: m.ttftSum, ttftCount: m.ttftCount };
    const last = (a) => a.length ? a[a.length - 1] : null;
    const fmt = (v, d) => v === null || v === undefined ? '—' : v.toFixed(d);
    $('v-rps').textContent = fmt(last(series.rps), 1);
    $('v-ttft').textContent = fmt(last(series.ttft), 0);
    $('v-streams').textContent = fmt(last(series.streams), 0);
    draw($('c-rps'), series.rps, '#58a6ff');
    draw($('c-ttft'), series.ttft, '#d29922');
    draw($('c-streams'), series.streams, '#3fb950');
  }
  function draw(cv, data, color) {
    const dpr = window.devicePixelRatio || 1;
    const w = cv.clientWidth || 360, h = cv.clientHeight || 120;
    if (cv.width !== Math.round(w * dpr)) { cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr); }
    const c = cv.getContext('2d');
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.clearRect(0, 0, w, h);
    let max = 0;
    for (const v of data) if (v !== null && v > max) max = v;
    max = max > 0 ? max * 1.15 : 1;
    c.strokeStyle = '#2b3642'; c.lineWidth = 1;
    for (let i = 1; i < 4; i++) { c.beginPath(); c.moveTo(0, (h * i) / 4); c.lineTo(w, (h * i) / 4); c.stroke(); }
    c.fillStyle = '#8b98a5'; c.font = '11px system-ui, sans-serif';
    c.fillText(max >= 10 ? max.toFixed(0) : max.toFixed(2), 4, 12);
    c.strokeStyle = color; c.lineWidth = 2; c.beginPath();
    let pen = false;
    data.forEach((v, i) => {
      const x = w - (data.length - 1 - i) * (w / (HISTORY - 1));
      if (v === null) { pen = false; return; }
      const y = h - 2 - (v / max) * (h - 16);
      if (pen) c.lineTo(x, y); else c.moveTo(x, y);
      pen = true;
    });
    c.stroke();
  }

  // --- loop --------------------------------------------------------------
  function setConn(ok, text) {
    const c = $('conn');
    c.textContent = text;
    c.className = 'pill ' + (ok ? 'ok' : 'bad');
  }
  async function poll() {
    try {
      const [sr, mr] = await Promise.all([get('/api/status'), get('/metrics')]);
      const st = await sr.json();
      const mt = await mr.text();
      delete st.token; // never shown: the invite carries the join secret
      const peers = Array.isArray(st.peers) ? st.peers : [];
      renderSelf(st);
      renderPeers(peers);
      renderGraph(st, peers);
      renderModels(st, peers);
      sample(mt);
      $('error').hidden = true;
      $('keyform').hidden = true;
      setConn(true, 'live');
      updates++;
      document.documentElement.dataset.updates = String(updates);
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      setConn(false, 'disconnected');
      $('error').textContent = String(e.message || e);
      $('error').hidden = false;
      if (e.auth) $('keyform').hidden = false;
    }
    setTimeout(poll, POLL_MS);
  }
  $('keyform').addEventListener('submit', (ev) => {
    ev.preventDefault();
    key = $('key').value.trim();
    sessionStorage.setItem('sealmesh-key', key);
    $('key').value = '';
  });
  poll();
})();
