// parley's dashboard: a page that signs in with a token and reads the
// store's API like any client. Live: a stream of server-sent events
// (/v1/events) says when the store changed; the page then reads what it
// shows again, at most once a second. Nothing is fetched from elsewhere.
'use strict';

const $ = (id) => document.getElementById(id);
const S = { token: sessionStorage.getItem('parley.token') || '', who: null, journal: [], lastIndex: 0, fleet: null,
  hosts: [], workers: [], leases: [], policies: [], tab: 'hosts', seenMigrations: new Set(), firstLoad: true };

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}
const svg = (tag, attrs) => { const e = document.createElementNS('http://www.w3.org/2000/svg', tag); for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v); return e; };
const pct = (x) => (x * 100).toFixed(0) + '%';
const ns = (t) => new Date(t / 1e6);
const hms = (d) => d.toLocaleTimeString([], { hour12: false });
const fill = (node, ...kids) => { node.replaceChildren(...kids.flat()); };

class APIError extends Error { constructor(status, msg) { super(msg); this.status = status; } }

async function api(path, opts = {}) {
  const headers = { Authorization: 'Bearer ' + S.token };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method: opts.method || 'GET', headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (!r.ok) throw new APIError(r.status, (data && data.error && data.error.message) || (r.status + ' ' + r.statusText));
  return data;
}

function showError(e) { $('error').textContent = e ? String(e.message || e) : ''; }

// ---- sign in ----

async function signIn(token) {
  S.token = token;
  const who = await api('/v1/whoami');
  S.who = who;
  sessionStorage.setItem('parley.token', token);
  $('who').textContent = (who.name || 'anonymous') + ' (' + who.role + ')';
  $('signin-view').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  await refresh();
  refreshFleet();
  connectEvents();
}

function canOperate() { return S.who && (S.who.role === 'operator' || S.who.role === 'admin'); }

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('signin-error').textContent = '';
  try { await signIn($('token').value.trim()); } catch (e) {
    S.token = '';
    $('signin-error').textContent = e.status === 401 ? 'This store does not know that token.' : String(e.message);
  }
});
$('signout').addEventListener('click', () => { sessionStorage.removeItem('parley.token'); location.reload(); });

document.querySelectorAll('#tabs button').forEach((b) => b.addEventListener('click', () => {
  S.tab = b.dataset.tab;
  document.querySelectorAll('#tabs button').forEach((x) => x.classList.toggle('active', x === b));
  document.querySelectorAll('.tab').forEach((t) => { t.hidden = t.id !== 'tab-' + S.tab; });
}));

// ---- live updates ----

let refreshTimer = null, refreshing = false, lastRefresh = 0;
function scheduleRefresh() {
  if (refreshTimer) return;
  const wait = Math.max(0, 1000 - (Date.now() - lastRefresh));
  refreshTimer = setTimeout(async () => { refreshTimer = null; await refresh(); }, wait);
}

async function connectEvents() {
  let backoff = 1000;
  for (;;) {
    try {
      const ctl = new AbortController();
      const r = await fetch('/v1/events', { headers: { Authorization: 'Bearer ' + S.token }, signal: ctl.signal });
      if (!r.ok) throw new APIError(r.status, 'event stream: ' + r.status);
      setLive(true);
      backoff = 1000;
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          const ev = { event: 'message', data: '' };
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) ev.event = line.slice(6).trim();
            else if (line.startsWith('data:')) ev.data += line.slice(5).trim();
          }
          if (ev.event === 'change') { try { onChange(JSON.parse(ev.data)); } catch (_) { /* a malformed event is skipped */ } }
        }
      }
    } catch (e) {
      if (e.status === 401) { sessionStorage.removeItem('parley.token'); location.reload(); return; }
    }
    setLive(false);
    await new Promise((res) => setTimeout(res, backoff));
    backoff = Math.min(backoff * 2, 15000);
  }
}

function setLive(on) { const l = $('live'); l.textContent = on ? 'live' : 'reconnecting'; l.className = 'pill ' + (on ? 'on' : 'off'); }

function onChange(ev) {
  $('cluster').textContent = 'member ' + ev.member + ' (' + ev.state.toLowerCase() + ') · leader ' + (ev.leader || 'none') + ' · term ' + ev.term + ' · index ' + ev.index;
  scheduleRefresh();
}

async function refresh() {
  if (refreshing) { scheduleRefresh(); return; }
  refreshing = true; lastRefresh = Date.now();
  try {
    const [journal, hosts, workers, leases, policies] = await Promise.all([
      api('/v1/journal?stale=true&limit=5000&since=' + S.lastIndex), api('/v1/hosts?stale=true'), api('/v1/workers?stale=true'),
      api('/v1/leases?stale=true'), api('/v1/policies?stale=true')]);
    for (const e of journal) { S.journal.push(e); S.lastIndex = Math.max(S.lastIndex, e.index); }
    if (S.journal.length > 20000) S.journal.splice(0, S.journal.length - 20000);
    Object.assign(S, { hosts, workers, leases, policies });
    renderMigrations(); renderLeases(); renderJournal(); renderPolicies(); renderHosts();
    S.firstLoad = false;
    showError(null);
  } catch (e) { showError(e); } finally { refreshing = false; }
}

async function refreshFleet() {
  try { S.fleet = await api('/v1/fleet'); renderHosts(); renderChart(); renderNegotiations(); } catch (e) { showError(e); }
  setTimeout(refreshFleet, 2000);
}

// ---- hosts ----

function migrationCounts() {
  const c = {};
  for (const e of S.journal) {
    if (e.kind !== W.kindMigration || e.outcome !== W.outcomeSuccess) continue;
    (c[e.from] = c[e.from] || { in: 0, out: 0 }).out++;
    (c[e.to] = c[e.to] || { in: 0, out: 0 }).in++;
  }
  return c;
}

function bar(frac, cls) {
  const s = el('span', { class: cls + (frac > 0.8 ? ' high' : '') });
  s.style.width = Math.min(100, Math.max(0, frac * 100)).toFixed(1) + '%';
  return el('div', { class: 'bar', title: pct(frac) }, s);
}

function renderHosts() {
  const fleet = (S.fleet && S.fleet.hosts) || [];
  const drains = Object.fromEntries(S.hosts.map((h) => [h.name, h]));
  const live = new Set(S.workers.map((w) => w.host));
  const counts = migrationCounts();
  const byCluster = {};
  let vms = 0, liveN = 0;
  for (const fh of fleet) {
    const st = fh.status || {};
    const cl = st.cluster || 'standalone hosts';
    (byCluster[cl] = byCluster[cl] || []).push(fh);
    vms += (st.vms || []).length;
    if (live.has(fh.host)) liveN++;
  }
  const hist = (S.fleet && S.fleet.history) || [];
  const now = hist.length ? hist[hist.length - 1] : null;
  fill($('summary'),
    el('div', {}, el('b', {}, fleet.length), 'hosts'),
    el('div', {}, el('b', {}, liveN), 'workers live'),
    el('div', {}, el('b', {}, vms), 'VMs'),
    el('div', {}, el('b', {}, now ? now.stddev.toFixed(3) : '–'), 'imbalance (stddev of CPU load)'),
    el('div', {}, el('b', {}, S.journal.filter((e) => e.kind === W.kindMigration && e.outcome === W.outcomeSuccess).length), 'migrations'));
  const groups = Object.keys(byCluster).sort().map((cl) => el('div', { class: 'cluster' }, el('h2', {}, cl),
    el('div', { class: 'hostgrid' }, byCluster[cl].map((fh) => hostCard(fh, drains[fh.host], live.has(fh.host), counts[fh.host] || { in: 0, out: 0 })))));
  fill($('hosts'), groups);
}

function hostCard(fh, drain, isLive, c) {
  const st = fh.status || {};
  const cpu = st.cpu_capacity_mhz ? st.cpu_used_mhz / st.cpu_capacity_mhz : 0;
  const mem = st.mem_capacity_mb ? st.mem_used_mb / st.mem_capacity_mb : 0;
  const draining = drain && drain.drain;
  const tags = [];
  if (draining) tags.push(el('span', { class: 'tag' }, drain.state || 'drain requested'));
  if (st.in_maintenance) tags.push(el('span', { class: 'tag' }, 'maintenance'));
  if (st.vcenter_up === false) tags.push(el('span', { class: 'tag vcenter-down', title: st.vcenter_reason || '' }, 'vCenter unavailable'));
  const age = typeof st.view_age_seconds === 'number' && st.view_age_seconds >= 0 ? st.view_age_seconds.toFixed(0) + ' s' : '-';
  const actions = [];
  if (canOperate()) {
    actions.push(el('button', { class: draining ? '' : 'danger', dataset: { action: draining ? 'undrain' : 'drain', host: fh.host },
      on: { click: () => hostAction(fh.host, draining ? 'undrain' : 'drain') } }, draining ? 'Undrain' : 'Drain'));
  }
  return el('div', { class: 'host' + (isLive ? '' : ' dead') + (draining ? ' draining' : ''), dataset: { host: fh.host } },
    el('div', { class: 'title' }, el('span', { class: 'dot' + (isLive ? ' live' : ''), title: isLive ? 'worker live' : 'no heartbeat' }), fh.host, ...tags),
    el('div', { class: 'meta' }, el('span', {}, 'CPU ' + pct(cpu)), el('span', {}, 'smoothed ' + pct(st.load_cpu || 0))), bar(cpu, ''),
    el('div', { class: 'meta' }, el('span', {}, 'memory ' + pct(mem)), el('span', {}, ((st.mem_used_mb || 0) / 1024).toFixed(0) + ' / ' + ((st.mem_capacity_mb || 0) / 1024).toFixed(0) + ' GB')), bar(mem, 'mem'),
    el('div', { class: 'meta' }, el('span', {}, (st.vms || []).length + ' VMs'), el('span', {}, '↓ ' + c.in + ' in · ↑ ' + c.out + ' out'), el('span', { class: 'view-age', title: 'how old the worker\'s view of its host is' }, 'view ' + age), ...actions),
    fh.error ? el('div', { class: 'error' }, fh.error) : null,
    el('details', {}, el('summary', {}, 'VMs'), el('div', {}, (st.vms || []).map((v) => v.name + ' (' + v.cpu_mhz + ' MHz, ' + v.mem_mb + ' MB)').join(', '))));
}

async function hostAction(host, action) {
  try { await api('/v1/hosts/' + encodeURIComponent(host) + '/' + action, { method: 'POST', body: {} }); scheduleRefresh(); } catch (e) { showError(e); }
}

// ---- migrations and the imbalance chart ----

function renderMigrations() {
  const rows = S.journal.filter((e) => e.kind === W.kindMigration || e.kind === W.kindWouldMigrate).slice(-500).reverse();
  fill($('migrations'), rows.map((e) => {
    const fresh = !S.firstLoad && !S.seenMigrations.has(e.index);
    S.seenMigrations.add(e.index);
    return el('tr', { class: 'migration clickable' + (fresh ? ' fresh' : ''), dataset: { vm: e.vm, interaction: e.interaction || '' }, on: { click: () => e.interaction && showTrace(e.interaction) } },
      el('td', {}, hms(ns(e.time))), el('td', {}, e.vm), el('td', {}, e.from), el('td', {}, e.to || ''),
      el('td', {}, e.duration_ms ? (e.duration_ms / 1000).toFixed(1) + ' s' : ''), el('td', {}, e.outcome + (e.reason ? ': ' + e.reason : '')),
      el('td', {}, e.policy ? e.policy + ' v' + e.version : ''), el('td', { class: 'muted' }, e.interaction || ''));
  }));
}

function renderChart() {
  const hist = (S.fleet && S.fleet.history) || [];
  const c = $('chart');
  c.replaceChildren();
  if (hist.length < 2) { c.append(svgText(10, 20, 'collecting samples...')); return; }
  const t0 = hist[0].time, t1 = hist[hist.length - 1].time;
  const ymax = Math.max(0.1, ...hist.map((s) => s.max));
  const x = (t) => ((t - t0) / Math.max(1, t1 - t0)) * 780 + 10, y = (v) => 190 - (v / ymax) * 180;
  for (const v of [0, ymax / 2, ymax]) { c.append(svg('line', { x1: 10, x2: 790, y1: y(v), y2: y(v), stroke: '#dde1e6' })); c.append(svgText(12, y(v) - 2, pct(v))); }
  c.append(svg('polyline', { points: hist.map((s) => x(s.time) + ',' + y(s.max)).join(' '), fill: 'none', stroke: '#c62828', 'stroke-dasharray': '4 3' }));
  c.append(svg('polyline', { points: hist.map((s) => x(s.time) + ',' + y(s.stddev)).join(' '), fill: 'none', stroke: '#0b6bcb', 'stroke-width': 2 }));
}
function svgText(x, y, s, attrs) { const t = svg('text', Object.assign({ x, y, fill: '#6b7785', 'font-size': 11 }, attrs || {})); t.textContent = s; return t; }

// ---- negotiations and traces ----

function renderNegotiations() {
  const seen = {};
  for (const fh of (S.fleet && S.fleet.hosts) || []) {
    for (const it of (fh.status && fh.status.interactions) || []) {
      const n = seen[it.id] = seen[it.id] || { id: it.id, policy: it.policy, agents: [], started: it.started, ended: it.ended, outcome: '', initiator: '' };
      n.agents.push(fh.worker);
      if (it.started < n.started) n.started = it.started;
      if (it.id.startsWith(fh.worker + '-') || it.id.startsWith(fh.worker + '.')) { n.initiator = fh.host; n.outcome = it.outcome || 'running'; n.ended = it.ended; }
    }
  }
  const list = Object.values(seen).filter((n) => n.agents.length > 1 || n.outcome).sort((a, b) => (a.started < b.started ? 1 : -1)).slice(0, 100);
  fill($('negotiations'), list.map((n) => el('tr', { class: 'clickable', dataset: { interaction: n.id }, on: { click: () => showTrace(n.id) } },
    el('td', {}, hms(new Date(n.started))), el('td', {}, n.id), el('td', {}, n.policy), el('td', {}, n.initiator), el('td', {}, n.agents.length),
    el('td', {}, n.outcome || 'running'), el('td', {}, n.ended ? ((new Date(n.ended) - new Date(n.started)) / 1000).toFixed(2) + ' s' : ''))));
}

async function showTrace(id) {
  document.querySelector('#tabs button[data-tab=negotiations]').click();
  $('trace-card').hidden = false;
  $('trace-title').textContent = 'Interaction ' + id;
  try {
    const t = await api('/v1/interactions/' + encodeURIComponent(id));
    fill($('trace-journal'), (t.journal || []).map((j) => el('div', {}, 'journal: ' + j.kind + ' ' + (j.vm || '') + ' ' + (j.from || '') + (j.to ? ' → ' + j.to : '') + ' ' + (j.outcome || '') + (j.reason ? ' (' + j.reason + ')' : ''))));
    drawSequence(t.steps || []);
  } catch (e) { fill($('trace-journal'), el('div', { class: 'error' }, e.message)); $('trace').replaceChildren(); }
}

// drawSequence draws a message sequence chart: a lane per agent, an arrow
// per message sent, a note per constraint, role and outcome.
function drawSequence(steps) {
  const agents = [];
  for (const s of steps) { if (!agents.includes(s.agent)) agents.push(s.agent); if (s.peer && !agents.includes(s.peer)) agents.push(s.peer); }
  const shown = steps.filter((s) => s.kind !== 'receive');
  const lane = 180, top = 30, rowH = 22, w = Math.max(600, agents.length * lane + 40), h = top + shown.length * rowH + 20;
  const c = $('trace');
  c.replaceChildren();
  c.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
  c.style.height = h + 'px';
  const lx = (a) => 20 + agents.indexOf(a) * lane + lane / 2;
  agents.forEach((a) => { c.append(svgText(lx(a), 16, a, { 'text-anchor': 'middle', fill: '#1d2733', 'font-weight': 700 })); c.append(svg('line', { x1: lx(a), x2: lx(a), y1: 22, y2: h - 8, stroke: '#c5ccd3' })); });
  const defs = svg('defs'); const m = svg('marker', { id: 'arrow', markerWidth: 8, markerHeight: 8, refX: 7, refY: 4, orient: 'auto' });
  m.append(svg('path', { d: 'M0,0 L8,4 L0,8 z', fill: '#0b6bcb' })); defs.append(m); c.append(defs);
  shown.forEach((s, i) => {
    const y = top + i * rowH + 10;
    const label = s.term.length > 60 ? s.term.slice(0, 57) + '...' : s.term;
    if (s.kind === 'send' && s.peer) {
      c.append(svg('line', { x1: lx(s.agent), x2: lx(s.peer), y1: y, y2: y, stroke: '#0b6bcb', 'marker-end': 'url(#arrow)' }));
      c.append(svgText((lx(s.agent) + lx(s.peer)) / 2, y - 3, label, { 'text-anchor': 'middle', fill: '#1d2733' }));
    } else {
      const color = s.kind === 'outcome' ? (s.term.startsWith('closed') ? '#1f8a4c' : '#c62828') : '#6b7785';
      c.append(svgText(lx(s.agent) + 6, y + 4, s.kind + ': ' + label, { fill: color }));
    }
  });
}

// ---- policies ----

async function renderPolicies() {
  const key = JSON.stringify(S.policies);
  if (key === S.policiesKey) return; // read the histories again only when a policy changed
  S.policiesKey = key;
  const box = $('policies');
  const cards = [];
  for (const p of S.policies) {
    let h;
    try { h = await api('/v1/policies/' + encodeURIComponent(p.name) + '/history?stale=true'); } catch (e) { showError(e); continue; }
    const versions = h.versions.slice().reverse().map((v) => el('tr', {},
      el('td', { class: v.version === h.active ? 'active' : '' }, 'v' + v.version + (v.version === h.active ? ' (active)' : '')),
      el('td', {}, v.author), el('td', {}, v.message || ''), el('td', {}, ns(v.time).toLocaleString()), el('td', { class: 'muted' }, v.sha256.slice(0, 12)),
      el('td', {}, canOperate() && v.version !== h.active ? el('button', { dataset: { activate: p.name + '@' + v.version }, on: { click: () => policyAction(p.name, 'activate', v.version) } }, 'Activate') : '')));
    const acts = h.activations.slice(-8).reverse().map((a) => el('li', {}, ns(a.time).toLocaleString() + ': ' + a.who + ' ' + a.reason + ' v' + a.from + ' → v' + a.to + (a.note ? ' (' + a.note + ')' : '')));
    cards.push(el('div', { class: 'card', dataset: { policy: p.name } }, el('h2', {}, p.name + (h.active ? ' · v' + h.active + ' active' : ' · none active')),
      canOperate() && h.activations.length > 1 ? el('div', { class: 'row' }, el('button', { on: { click: () => policyAction(p.name, 'rollback') } }, 'Roll back to the previous version')) : null,
      el('table', { class: 'policy-versions' }, el('thead', {}, el('tr', {}, el('th', {}, 'version'), el('th', {}, 'pushed by'), el('th', {}, 'message'), el('th', {}, 'time'), el('th', {}, 'sha256'), el('th', {}, ''))), el('tbody', {}, versions)),
      el('details', {}, el('summary', {}, 'activations'), el('ul', {}, acts))));
    S.history = S.history || {};
    S.history[p.name] = h;
  }
  fill(box, cards);
  fillDiffSelects();
}

function fillDiffSelects() {
  const sel = $('diff-policy');
  const cur = sel.value;
  fill(sel, S.policies.map((p) => el('option', { value: p.name }, p.name)));
  if (cur && S.policies.some((p) => p.name === cur)) sel.value = cur;
  fillVersionSelects();
}

function fillVersionSelects() {
  const h = (S.history || {})[$('diff-policy').value];
  if (!h) return;
  for (const [id, pick] of [['diff-a', Math.max(1, h.versions.length - 1)], ['diff-b', h.versions.length]]) {
    const s = $(id), cur = s.value;
    fill(s, h.versions.map((v) => el('option', { value: v.version }, 'v' + v.version)));
    s.value = cur && h.versions.some((v) => String(v.version) === cur) ? cur : String(pick);
  }
}
$('diff-policy').addEventListener('change', fillVersionSelects);
$('diff-btn').addEventListener('click', showDiff);

async function showDiff() {
  const name = $('diff-policy').value, a = $('diff-a').value, b = $('diff-b').value;
  try {
    const d = await api('/v1/policies/' + encodeURIComponent(name) + '/diff?from=' + a + '&to=' + b);
    fill($('diff'), sideBySide(d.diff, name, a, b));
  } catch (e) { showError(e); }
}

// sideBySide turns a unified diff into rows: removed lines on the left,
// added on the right, paired in order; context on both sides.
function sideBySide(diff, name, a, b) {
  const rows = [el('tr', {}, el('th', {}, name + ' v' + a), el('th', {}, name + ' v' + b))];
  if (!diff) { rows.push(el('tr', {}, el('td', { class: 'hunk', colspan: 2 }, 'identical'))); return rows; }
  let dels = [], adds = [];
  const flush = () => { for (let i = 0; i < Math.max(dels.length, adds.length); i++) rows.push(el('tr', {}, el('td', { class: i < dels.length ? 'del' : '' }, dels[i] ?? ''), el('td', { class: i < adds.length ? 'add' : '' }, adds[i] ?? ''))); dels = []; adds = []; };
  for (const line of diff.split('\n')) {
    if (line.startsWith('---') || line.startsWith('+++')) continue;
    if (line.startsWith('@@')) { flush(); rows.push(el('tr', {}, el('td', { class: 'hunk', colspan: 2 }, line))); } else if (line.startsWith('-')) dels.push(line.slice(1));
    else if (line.startsWith('+')) adds.push(line.slice(1));
    else { flush(); const t = line.slice(1); rows.push(el('tr', {}, el('td', {}, t), el('td', {}, t))); }
  }
  flush();
  return rows;
}

async function policyAction(name, action, version) {
  const what = action === 'rollback' ? 'Roll back ' + name + ' to its previous version?' : 'Activate ' + name + ' v' + version + '?';
  if (!confirm(what)) return;
  try { await api('/v1/policies/' + encodeURIComponent(name) + '/' + action, { method: 'POST', body: version ? { version } : {} }); scheduleRefresh(); } catch (e) { showError(e); }
}

// ---- leases and journal ----

function renderLeases() {
  const now = Date.now() * 1e6;
  fill($('leases'), S.leases.map((l) => el('tr', {}, el('td', {}, l.key), el('td', {}, l.holder), el('td', {}, l.token),
    el('td', { dataset: { expiry: l.expiry } }, Math.max(0, (l.expiry - now) / 1e9).toFixed(1) + ' s'), el('td', {}, l.state || W.leaseHeld))));
}
setInterval(() => {
  const now = Date.now() * 1e6;
  document.querySelectorAll('#leases td[data-expiry]').forEach((td) => { td.textContent = Math.max(0, (td.dataset.expiry - now) / 1e9).toFixed(1) + ' s'; });
}, 500);

function renderJournal() {
  const q = $('journal-search').value.trim().toLowerCase();
  const rows = [];
  for (let i = S.journal.length - 1; i >= 0 && rows.length < 500; i--) {
    const e = S.journal[i];
    if (q && !Object.values(e).some((v) => String(v).toLowerCase().includes(q))) continue;
    rows.push(el('tr', {}, el('td', {}, e.index), el('td', {}, hms(ns(e.time))), el('td', {}, e.kind), el('td', {}, e.vm || ''), el('td', {}, e.from || ''), el('td', {}, e.to || ''),
      el('td', {}, e.outcome || ''), el('td', {}, e.reason || ''), el('td', {}, e.policy ? e.policy + ' v' + e.version : ''), el('td', {}, e.worker || '')));
  }
  fill($('journal'), rows);
}
$('journal-search').addEventListener('input', renderJournal);

// ---- start ----

if (S.token) signIn(S.token).catch(() => { sessionStorage.removeItem('parley.token'); S.token = ''; });
