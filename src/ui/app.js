// topod admin page. Plain JavaScript, no dependencies: it reads and writes
// the node's /v1 API (same origin), draws the overlay in SVG from
// GET /v1/cluster/links and follows GET /v1/events, polling when the
// stream is down. Every call carries the API token typed into the page
// (kept in sessionStorage: gone when the tab closes) as
// `Authorization: Bearer`; the event stream is read with fetch() rather
// than EventSource, which cannot send that header (a token in the URL
// would end up in logs and history). `?demo=N` draws N simulated members and keeps the
// layout animating (frame-rate figure); no API call is made then.
'use strict';
(function () {
  const SVGNS = 'http://www.w3.org/2000/svg';
  const AGGREGATE_ABOVE = 150; // members drawn one by one up to this
  const HISTORY_PAGE = 10;
  const POLL_FAST_MS = 2000; // no event stream, or a transition in flight
  const POLL_SLOW_MS = 10000; // reachability and phases otherwise
  const W = 800, H = 600;
  const TOPOLOGY_EVENTS = ['announced', 'prepared', 'committed', 'aborted', 'rolled_back'];
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const demoN = Math.max(0, Math.min(2000, parseInt(params.get('demo') || '0', 10) || 0));

  const S = {
    topo: null, links: null, policy: null, features: {},
    sse: false, events: null, selected: null, hist: { stack: [], before: null, next: null },
    refreshTimer: null, pollTimer: null,
  };
  // Figures read by the browser tests and BENCHMARKS.md.
  const stats = { firstGraphMs: null, frames: 0, fps: 0, graphUpdates: 0 };
  window.topoUi = stats;

  // ---- API ----
  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
    toString() { return (this.status ? this.status + ' ' : '') + this.code + ': ' + this.message; }
  }

  const TOKEN_KEY = 'topod.token';
  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }
  function setToken(t) {
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { showError('cannot keep the token: ' + e.message); }
  }
  function authHeaders(headers) {
    const t = token();
    if (t) headers.authorization = 'Bearer ' + t;
    return headers;
  }

  async function api(method, path, body) {
    const opt = { method, headers: authHeaders({ accept: 'application/json' }) };
    if (body !== undefined) {
      opt.headers['content-type'] = 'application/json';
      opt.body = JSON.stringify(body);
    }
    let resp;
    try { resp = await fetch(path, opt); } catch (e) {
      throw new ApiError(0, 'unreachable', 'cannot reach the node: ' + e.message);
    }
    const text = await resp.text();
    let json = null;
    if (text) {
      try { json = JSON.parse(text); } catch (e) {
        if (resp.ok) throw new ApiError(resp.status, 'bad_answer', 'the answer is not JSON: ' + e.message);
      }
    }
    if (!resp.ok) {
      const err = json && json.error;
      let message = err ? err.message : (text || resp.statusText);
      if (resp.status === 401) message += ' \u2014 enter an API token above (topod dev prints one)';
      throw new ApiError(resp.status, err ? err.code : 'http_' + resp.status, message);
    }
    return json;
  }

  function showError(e) {
    $('alert-text').textContent = String(e);
    $('alert').hidden = false;
  }
  function clearError() { $('alert').hidden = true; $('alert-text').textContent = ''; }

  // ---- small DOM helpers ----
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === 'text') e.textContent = attrs[k]; else if (k === 'class') e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    for (const c of kids) if (c != null) e.append(c);
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }
  function fmt(v) {
    if (v === null || v === undefined) return '—';
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(3);
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }
  function time(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '—'; }
  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }
  // Generic rendering of an API value: objects as key/value tables, arrays
  // of objects as grids, so new fields show without a page change.
  function valueView(v) {
    if (Array.isArray(v)) {
      if (v.length && v.every((x) => x && typeof x === 'object' && !Array.isArray(x))) {
        const keys = [...new Set(v.flatMap(Object.keys))];
        const t = el('table', { class: 'grid' }, el('thead', {}, el('tr', {}, ...keys.map((k) => el('th', { scope: 'col', text: k })))));
        const tb = el('tbody');
        for (const row of v) tb.append(el('tr', {}, ...keys.map((k) => el('td', {}, cell(row[k])))));
        t.append(tb);
        return t;
      }
      return document.createTextNode(v.length ? v.map(fmt).join(', ') : '[]');
    }
    if (v && typeof v === 'object') {
      if (!Object.keys(v).length) return document.createTextNode('{}');
      const tb = el('tbody');
      for (const k of Object.keys(v)) tb.append(el('tr', {}, el('th', { scope: 'row', text: k }), el('td', {}, cell(v[k]))));
      return el('table', { class: 'kv' }, tb);
    }
    return document.createTextNode(fmt(v));
  }
  function cell(v) { return v && typeof v === 'object' ? valueView(v) : document.createTextNode(fmt(v)); }
  function kvTable(target, rows) {
    const tb = el('tbody');
    for (const [k, v] of rows) tb.append(el('tr', {}, el('th', { scope: 'row', text: k }), el('td', {}, cell(v))));
    target.replaceChildren(tb);
  }

  // ---- tabs (arrow keys move between them) ----
  const tabs = [...document.querySelectorAll('[role=tab]')];
  function selectTab(tab, focus) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute('aria-controls')).hidden = !on;
    }
    if (focus) tab.focus();
    loadPanel(tab.id.slice(4));
  }
  for (const t of tabs) {
    t.addEventListener('click', () => selectTab(t, false));
    t.addEventListener('keydown', (e) => {
      const i = tabs.indexOf(t);
      const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
      if (to === undefined) return;
      e.preventDefault();
      selectTab(tabs[(to + tabs.length) % tabs.length], true);
    });
  }
  function visible(name) { return !$('panel-' + name).hidden; }
  function loadPanel(name) {
    if (demoN) return;
    const run = { history: loadHistory, policy: loadPolicy, monitor: loadMonitor, node: renderNode }[name];
    if (run) Promise.resolve(run()).catch(showError);
  }

  // ---- graph model: members, links (from each node's own list), shadow ----
  function buildModel(links, topo) {
    const members = links.members;
    const byId = new Map(members.map((m) => [m.id, m]));
    const cfg = (topo && topo.overlay_config) || {};
    const servers = new Set(topo && topo.topology === 'client_server' && Array.isArray(cfg.servers) ? cfg.servers : []);
    const pubsub = topo && topo.topology === 'pub_sub';
    const nodes = members.map((m) => ({
      id: m.id, voter: m.voter, leader: links.leader === m.id,
      reachable: m.reachable && !!m.stats, server: servers.has(m.id),
      phase: m.stats ? m.stats.state.name : (m.reachable ? 'no data plane' : 'unreachable'),
    }));
    const edges = pairs(members, (m) => m.stats && m.stats.current, byId);
    for (const e of edges) {
      if (pubsub) e.cls = e.eager ? 'eager' : 'lazy';
      if (!e.both && e.otherKnown) e.cls = 'asym';
    }
    const shadowOf = members.filter((m) => m.stats && m.stats.other);
    const shadow = pairs(shadowOf, (m) => m.stats.other, byId);
    const shadowState = shadowOf.length ? shadowOf[0].stats.state.name : null;
    return { nodes, edges, shadow, shadowState, servers };
  }
  // Unordered pairs from each member's link list; `both` when both ends
  // list the link, `otherKnown` when the other end's list is known.
  function pairs(members, overlayOf, byId) {
    const map = new Map();
    for (const m of members) {
      const o = overlayOf(m);
      if (!o) continue;
      const eager = new Set(o.eager || []);
      for (const p of o.links) {
        const a = Math.min(m.id, p), b = Math.max(m.id, p), key = a + '-' + b;
        let e = map.get(key);
        if (!e) { e = { key, a, b, from: new Set(), eager: false, cls: '' }; map.set(key, e); }
        e.from.add(m.id);
        if (eager.has(p)) e.eager = true;
      }
    }
    const out = [...map.values()];
    for (const e of out) {
      e.both = e.from.size === 2;
      const other = e.from.has(e.a) ? e.b : e.a;
      const om = byId.get(other);
      e.otherKnown = !!(om && om.stats && overlayOf(om));
    }
    return out;
  }

  // ---- force-directed layout (positions kept across updates) ----
  const pos = new Map();
  let model = null, heat = 0;
  function hash(n) { let x = n * 2654435761 % 4294967296; x ^= x >>> 13; return (x % 1000) / 1000; }
  function placeNew(nodes) {
    nodes.forEach((n, i) => {
      if (pos.has(n.id)) return;
      const a = (2 * Math.PI * i) / nodes.length;
      pos.set(n.id, { x: W / 2 + 220 * Math.cos(a) + hash(n.id) * 10, y: H / 2 + 200 * Math.sin(a) + hash(n.id + 7) * 10, vx: 0, vy: 0 });
    });
    const ids = new Set(nodes.map((n) => n.id));
    for (const id of [...pos.keys()]) if (!ids.has(id)) pos.delete(id);
  }
  function step() {
    const nodes = model.nodes, n = nodes.length;
    const k = Math.sqrt((W * H) / Math.max(n, 1)) * (n <= 10 ? 0.9 : 0.6);
    const P = nodes.map((nd) => pos.get(nd.id));
    const fx = new Float64Array(n), fy = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        let dx = P[i].x - P[j].x, dy = P[i].y - P[j].y;
        let d2 = dx * dx + dy * dy;
        if (d2 < 0.01) { dx = hash(i + j) - 0.5; dy = 0.5 - hash(i * j + 3); d2 = 0.25; }
        const f = (k * k) / d2;
        fx[i] += dx * f; fy[i] += dy * f; fx[j] -= dx * f; fy[j] -= dy * f;
      }
    }
    const index = new Map(nodes.map((nd, i) => [nd.id, i]));
    for (const e of model.edges) {
      const i = index.get(e.a), j = index.get(e.b);
      if (i === undefined || j === undefined) continue;
      const dx = P[i].x - P[j].x, dy = P[i].y - P[j].y, d = Math.sqrt(dx * dx + dy * dy) || 1;
      const f = d / k;
      fx[i] -= dx * f; fy[i] -= dy * f; fx[j] += dx * f; fy[j] += dy * f;
    }
    const layered = model.servers.size > 0;
    for (let i = 0; i < n; i++) {
      const p = P[i];
      let gx = W / 2 - p.x, gy = H / 2 - p.y;
      const g = layered && model.nodes[i].server ? 0.9 : 0.05;
      fx[i] += gx * g * k / 40; fy[i] += gy * g * k / 40;
      const f = Math.sqrt(fx[i] * fx[i] + fy[i] * fy[i]) || 1;
      const move = Math.min(f, heat);
      p.x = Math.max(20, Math.min(W - 20, p.x + (fx[i] / f) * move));
      p.y = Math.max(20, Math.min(H - 20, p.y + (fy[i] / f) * move));
    }
    heat *= 0.96;
  }

  // ---- SVG rendering ----
  function Renderer(svgEl, prefix) {
    this.svg = svgEl; this.prefix = prefix;
    this.gl = svg('g'); this.gn = svg('g');
    svgEl.replaceChildren(this.gl, this.gn);
    this.nodes = new Map(); this.edges = new Map();
  }
  Renderer.prototype.reset = function () { this.svg.replaceChildren(this.gl, this.gn); };
  Renderer.prototype.sync = function (nodes, edges, interactive) {
    if (this.gl.parentNode !== this.svg) this.reset();
    const r = nodes.length <= 20 ? 16 : nodes.length <= 60 ? 11 : 7;
    const seen = new Set();
    for (const n of nodes) {
      seen.add(n.id);
      let g = this.nodes.get(n.id);
      if (!g) {
        g = svg('g', interactive ? { 'data-node-id': n.id, tabindex: 0, role: 'button' } : { 'data-node-id': n.id });
        g.append(svg('circle', { r }), svg('text', { 'text-anchor': 'middle', dy: '0.35em' }), svg('text', { class: 'phase', 'text-anchor': 'middle' }));
        this.gn.append(g);
        this.nodes.set(n.id, g);
      }
      const [c, label, phase] = g.children;
      c.setAttribute('r', r);
      phase.setAttribute('dy', r + 11);
      label.textContent = r >= 11 ? String(n.id) : '';
      const showPhase = n.phase !== 'steady' && nodes.length <= 60;
      phase.textContent = showPhase ? n.phase : '';
      const cls = [this.prefix + 'member', n.voter ? 'voter' : 'learner'];
      if (n.leader) cls.push('leader');
      if (!n.reachable) cls.push('unreachable');
      if (n.server) cls.push('server');
      if (S.selected === n.id && interactive) cls.push('selected');
      g.setAttribute('class', cls.join(' '));
      if (interactive) {
        g.setAttribute('aria-label', 'node ' + n.id + ', ' + (n.leader ? 'leader, ' : '') + (n.voter ? 'voter' : 'learner') +
          (n.server ? ', server' : '') + ', ' + n.phase + '. Enter shows its detail.');
      }
    }
    for (const [id, g] of this.nodes) if (!seen.has(id)) { g.remove(); this.nodes.delete(id); }
    const seenE = new Set();
    for (const e of edges) {
      seenE.add(e.key);
      let l = this.edges.get(e.key);
      if (!l) { l = svg('line'); this.gl.append(l); this.edges.set(e.key, l); }
      l.setAttribute('class', (this.prefix + 'link ' + (e.cls || '')).trim());
      l.setAttribute('data-a', e.a); l.setAttribute('data-b', e.b);
    }
    for (const [key, l] of this.edges) if (!seenE.has(key)) { l.remove(); this.edges.delete(key); }
  };
  Renderer.prototype.draw = function () {
    for (const [id, g] of this.nodes) {
      const p = pos.get(id);
      if (p) g.setAttribute('transform', 'translate(' + p.x.toFixed(1) + ',' + p.y.toFixed(1) + ')');
    }
    for (const l of this.edges.values()) {
      const a = pos.get(+l.getAttribute('data-a')), b = pos.get(+l.getAttribute('data-b'));
      if (!a || !b) continue;
      l.setAttribute('x1', a.x.toFixed(1)); l.setAttribute('y1', a.y.toFixed(1));
      l.setAttribute('x2', b.x.toFixed(1)); l.setAttribute('y2', b.y.toFixed(1));
    }
  };

  const main = new Renderer($('graph'), '');
  const shadowR = new Renderer($('shadow'), 'shadow-');

  // Beyond AGGREGATE_ABOVE members: one bubble per (role, reachability,
  // phase) group, with the number of links inside and between groups.
  function drawAggregate(m) {
    main.nodes.clear(); main.edges.clear();
    const key = (n) => (n.voter ? 'voters' : 'learners') + (n.reachable ? '' : ' unreachable') + (n.phase === 'steady' || !n.reachable ? '' : ' ' + n.phase);
    const groups = new Map();
    for (const n of m.nodes) { const k = key(n); groups.set(k, (groups.get(k) || 0) + 1); }
    const names = [...groups.keys()].sort();
    const of = new Map(m.nodes.map((n) => [n.id, key(n)]));
    const between = new Map();
    for (const e of m.edges) {
      const ga = of.get(e.a), gb = of.get(e.b);
      if (!ga || !gb) continue;
      const k = ga < gb ? ga + '|' + gb : gb + '|' + ga;
      between.set(k, (between.get(k) || 0) + 1);
    }
    const at = new Map(names.map((nm, i) => {
      const a = (2 * Math.PI * i) / names.length - Math.PI / 2;
      return [nm, names.length === 1 ? [W / 2, H / 2] : [W / 2 + 220 * Math.cos(a), H / 2 + 190 * Math.sin(a)]];
    }));
    const gl = svg('g'), gn = svg('g');
    for (const [k, count] of between) {
      const [ga, gb] = k.split('|');
      const [x1, y1] = at.get(ga), [x2, y2] = at.get(gb);
      if (ga === gb) continue;
      gl.append(svg('line', { class: 'link agg-link', x1, y1, x2, y2 }));
      const t = svg('text', { x: (x1 + x2) / 2, y: (y1 + y2) / 2, class: 'agg-count', 'text-anchor': 'middle' });
      t.textContent = count + ' links';
      gl.append(t);
    }
    for (const nm of names) {
      const [x, y] = at.get(nm), count = groups.get(nm);
      const inside = between.get(nm + '|' + nm) || 0;
      const g = svg('g', { class: 'agg', transform: 'translate(' + x + ',' + y + ')', tabindex: 0, role: 'img', 'aria-label': nm + ': ' + count + ' members, ' + inside + ' links inside' });
      g.append(svg('circle', { r: 20 + 6 * Math.sqrt(count) }));
      const t1 = svg('text', { 'text-anchor': 'middle', dy: '-0.2em' }); t1.textContent = nm;
      const t2 = svg('text', { 'text-anchor': 'middle', dy: '1.1em' }); t2.textContent = count + ' members, ' + inside + ' links';
      g.append(t1, t2);
      gn.append(g);
    }
    $('graph').replaceChildren(gl, gn);
    $('graph-note').textContent = 'aggregate view: ' + m.nodes.length + ' members (more than ' + AGGREGATE_ABOVE + '), ' + m.edges.length + ' links';
  }

  function setModel(m) {
    model = m;
    stats.graphUpdates++;
    if (m.nodes.length > AGGREGATE_ABOVE) {
      drawAggregate(m);
      $('shadow-box').hidden = true;
    } else {
      placeNew(m.nodes);
      main.sync(m.nodes, m.edges, true);
      const asym = m.edges.filter((e) => e.cls === 'asym').length;
      $('graph-note').textContent = 'current overlay: ' + m.nodes.length + ' members, ' + m.edges.length + ' links' +
        (asym ? ', ' + asym + ' listed by one end only' : '');
      const sh = m.shadow.length > 0;
      $('shadow-box').hidden = !sh;
      if (sh) {
        shadowR.sync(m.nodes, m.shadow, false);
        $('shadow-note').textContent = (m.shadowState === 'draining' ? 'old overlay (draining): ' : 'shadow overlay (preparing): ') + m.shadow.length + ' links';
      }
      heat = Math.max(heat, 40);
      kick();
    }
    if (stats.firstGraphMs === null && m.nodes.length) stats.firstGraphMs = Math.round(performance.now());
  }

  // ---- animation loop (runs while the layout moves; always in demo) ----
  let running = false, fpsFrames = 0, fpsStart = 0;
  function kick() { if (!running) { running = true; requestAnimationFrame(frame); } }
  function frame(t) {
    if (!model || model.nodes.length > AGGREGATE_ABOVE) { running = false; return; }
    step();
    main.draw();
    if (!$('shadow-box').hidden) shadowR.draw();
    stats.frames++; fpsFrames++;
    if (!fpsStart) fpsStart = t;
    if (t - fpsStart >= 1000) { stats.fps = Math.round((fpsFrames * 1000) / (t - fpsStart)); fpsFrames = 0; fpsStart = t; }
    if (heat > 0.5 || demoN) requestAnimationFrame(frame); else running = false;
  }

  // ---- member interaction ----
  function memberOf(target) { const g = target.closest && target.closest('[data-node-id]'); return g ? +g.getAttribute('data-node-id') : null; }
  $('graph').addEventListener('click', (e) => { const id = memberOf(e.target); if (id !== null) openNode(id); });
  $('graph').addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' && e.key !== ' ') return;
    const id = memberOf(e.target);
    if (id !== null) { e.preventDefault(); openNode(id); }
  });
  function openNode(id) {
    S.selected = id;
    $('node-select').value = String(id);
    selectTab($('tab-node'), true);
  }

  // ---- summary, topology info ----
  function renderSummary() {
    const t = S.topo, l = S.links;
    $('s-topology').textContent = t ? t.topology : '…';
    $('s-epoch').textContent = t ? t.epoch : '…';
    $('s-members').textContent = l ? l.members.length + ' (' + l.members.filter((m) => !m.reachable).length + ' unreachable)' : (t ? t.node_count : '…');
    $('s-leader').textContent = t && t.leader ? 'node ' + t.leader : 'none known';
    $('s-served').textContent = l ? 'node ' + l.served_by : '…';
    $('s-live').textContent = demoN ? 'demo (simulated)' : S.sse ? 'live (events)' : 'polling every ' + POLL_FAST_MS / 1000 + ' s';
    if (!t) return;
    $('graph-caption').textContent = t.topology + ', epoch ' + t.epoch;
    kvTable($('topo-info'), [
      ['topology', t.topology], ['overlay config', t.overlay_config], ['epoch', t.epoch],
      ['members', t.node_count], ['leader', t.leader], ['current instance', t.current_instance],
      ['this node\u2019s links', t.links],
      ...(t.metrics ? flat(t.metrics, '') : [['metrics', 'no monitor round yet']]),
    ]);
    const f = t.in_flight;
    $('in-flight').textContent = f ? '#' + f.id + ' ' + f.from + ' \u2192 ' + f.to + ' (' + reason(f.reason) + '), ' +
      Object.keys(f.reports || {}).length + ' of ' + (f.members || []).length + ' reported' : 'none';
  }
  // Nested metrics as dotted rows (latency_ms.p50), to keep the side narrow.
  function flat(v, prefix) {
    return Object.entries(v).flatMap(([k, x]) => x && typeof x === 'object' && !Array.isArray(x)
      ? flat(x, prefix + k + '.') : [[prefix + k, x]]);
  }
  function reason(r) {
    if (!r) return '—';
    if (typeof r === 'string') return r;
    const kind = r.kind || r.type || Object.keys(r)[0];
    const rest = Object.entries(r).filter(([k]) => k !== 'kind' && k !== 'type').map(([k, v]) => k + ' ' + fmt(v));
    return rest.length ? kind + ': ' + rest.join(', ') : kind;
  }

  // ---- refresh and live updates ----
  async function refresh() {
    const [topo, links] = await Promise.all([api('GET', '/v1/topology'), api('GET', '/v1/cluster/links')]);
    S.topo = topo; S.links = links;
    renderSummary();
    setModel(buildModel(links, topo));
    fillNodeSelect();
    if (visible('node')) renderNode();
  }
  function scheduleRefresh(alsoHistory) {
    clearTimeout(S.refreshTimer);
    S.refreshTimer = setTimeout(() => {
      refresh().catch(showError);
      if (alsoHistory && visible('history') && S.hist.before === null) loadHistory().catch(showError);
    }, 150);
  }
  function poll() {
    clearTimeout(S.pollTimer);
    const fast = !S.sse || (S.topo && S.topo.in_flight) ||
      (S.links && S.links.members.some((m) => m.stats && m.stats.state.name !== 'steady'));
    S.pollTimer = setTimeout(() => {
      refresh().catch(showError).finally(poll);
      if (!S.sse && visible('history') && S.hist.before === null) loadHistory().catch(showError);
      if (!S.sse && visible('monitor')) loadMonitor().catch(showError);
    }, fast ? POLL_FAST_MS : POLL_SLOW_MS);
  }
  function parse(ev) { try { return JSON.parse(ev.data); } catch (e) { showError('undecodable event: ' + e.message); return null; } }
  function onEvent(kind, ev) {
    if (TOPOLOGY_EVENTS.includes(kind)) {
      const v = parse(ev);
      if (v) $('action-result').textContent = 'event: transition #' + v.transition_id + ' ' + kind + ' (' + v.from + ' \u2192 ' + v.to + ')';
      scheduleRefresh(true);
    } else if (kind === 'monitor_round') {
      const v = parse(ev);
      if (v && S.topo) { S.topo.metrics = v.metrics; renderSummary(); }
      if (visible('monitor')) loadMonitor().catch(showError);
    } else if (kind === 'lagged') {
      scheduleRefresh(true);
    }
  }
  // Server-Sent Events read with fetch() (so the token goes in a header):
  // lines `event:` and `data:` up to a blank line make one event.
  const SSE_MAX_LINE = 1 << 20; // a line longer than this ends the stream
  async function readEvents(signal) {
    const resp = await fetch('/v1/events', { headers: authHeaders({ accept: 'text/event-stream' }), signal });
    if (!resp.ok || !resp.body) throw new ApiError(resp.status, 'http_' + resp.status, 'event stream refused');
    S.sse = true; renderSummary();
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buf = '', kind = 'message', data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (line === '') {
          if (data.length) onEvent(kind, { data: data.join('\n') });
          kind = 'message'; data = [];
        } else if (line.startsWith('event:')) kind = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (buf.length > SSE_MAX_LINE) throw new Error('event line too long');
    }
  }
  function startEvents() {
    if (S.events) S.events.abort();
    if (!window.ReadableStream || !window.AbortController) { renderSummary(); return; }
    const ctl = new AbortController();
    S.events = ctl;
    readEvents(ctl.signal).catch(() => {}).finally(() => {
      if (S.events !== ctl) return; // replaced by a newer stream
      S.sse = false; renderSummary();
      setTimeout(() => { if (S.events === ctl) startEvents(); }, 10000);
    });
  }
  function initToken() {
    const input = $('token');
    input.value = token() ? '********' : '';
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (input.value && input.value !== '********') setToken(input.value.trim());
      input.value = token() ? '********' : '';
      clearError();
      Promise.all([refresh(), loadPolicy()]).catch(showError);
      startEvents();
    });
    $('token-clear').addEventListener('click', () => {
      setToken(''); input.value = '';
      if (S.events) { S.events.abort(); S.events = null; }
      S.sse = false; renderSummary();
    });
  }

  // ---- history (paginated) ----
  async function loadHistory() {
    const q = '/v1/topology/history?limit=' + HISTORY_PAGE + (S.hist.before !== null ? '&before=' + S.hist.before : '');
    const page = await api('GET', q);
    S.hist.next = page.next_before;
    const tb = $('history').tBodies[0];
    tb.replaceChildren(...page.transitions.map((t) => {
      const details = [];
      if (t.abort_reason) details.push('aborted: ' + t.abort_reason);
      if (t.missing && t.missing.length) details.push('missing: ' + t.missing.join(', '));
      if (t.trigger) details.push(t.trigger.explanation);
      if (t.request_id) details.push('request ' + t.request_id);
      return el('tr', { 'data-transition-id': t.id },
        el('td', { text: '#' + t.id }), el('td', { text: t.from + ' \u2192 ' + t.to }),
        el('td', { text: reason(t.reason) }), el('td', { text: t.requested_by }),
        el('td', { class: 'st-' + t.status, text: t.status }), el('td', { text: time(t.proposed_at_ms) }),
        el('td', { text: time(t.decided_at_ms) }), el('td', { text: details.join('; ') || '—' }));
    }));
    if (!page.transitions.length) tb.append(el('tr', {}, el('td', { colspan: 8, class: 'muted', text: 'no transitions yet' })));
    $('hist-older').disabled = page.next_before === null || page.next_before === undefined;
    $('hist-newest').disabled = S.hist.before === null;
    $('hist-page').textContent = 'page ' + (S.hist.stack.length + 1);
  }
  $('hist-older').addEventListener('click', () => {
    S.hist.stack.push(S.hist.before); S.hist.before = S.hist.next;
    loadHistory().catch(showError);
  });
  $('hist-newest').addEventListener('click', () => {
    S.hist.stack = []; S.hist.before = null;
    loadHistory().catch(showError);
  });

  // ---- node detail ----
  function fillNodeSelect() {
    const sel = $('node-select'), ids = S.links ? S.links.members.map((m) => m.id) : [];
    if (sel.options.length !== ids.length || [...sel.options].some((o, i) => +o.value !== ids[i])) {
      sel.replaceChildren(...ids.map((id) => el('option', { value: id, text: 'node ' + id })));
    }
    if (S.selected === null && ids.length) S.selected = S.links.served_by;
    sel.value = String(S.selected);
  }
  $('node-select').addEventListener('change', (e) => { S.selected = +e.target.value; renderNode(); });
  function renderNode() {
    const box = $('node-detail');
    const m = S.links && S.links.members.find((x) => x.id === S.selected);
    if (!m) { box.replaceChildren(el('p', { class: 'muted', text: 'no member selected' })); return; }
    const head = el('table', { class: 'kv' });
    const st = m.stats;
    kvTable(head, [['node', m.id], ['role', m.voter ? 'voter' : 'learner'], ['api', m.api_addr],
      ['reachable', m.reachable ? 'yes' : 'no'], ['error', m.error],
      ['state', st && st.state], ['verified instance', st && st.verified], ['last failure', st && st.last_failure],
      ['current overlay', st && st.current], ['other overlay', st && st.other]]);
    const kids = [head];
    if (st) {
      kids.push(el('h3', { text: 'Peers' }));
      const rows = st.peers.map((p) => el('tr', {},
        ...[p.peer, p.link_up ? 'up' : 'down', p.overlay_link ? 'yes' : 'no',
          p.rtt_us === null || p.rtt_us === undefined ? '—' : (p.rtt_us / 1000).toFixed(2),
          bytes(p.bytes_in), bytes(p.bytes_out), p.messages_in, p.messages_out,
          p.send_queue_depth, p.disconnects, p.frames_dropped].map((v) => el('td', { text: String(v) }))));
      const cols = ['peer', 'link', 'overlay', 'RTT ms', 'bytes in', 'bytes out', 'msgs in', 'msgs out', 'queue', 'disconnects', 'dropped'];
      kids.push(el('table', { class: 'grid', id: 'peers' },
        el('thead', {}, el('tr', {}, ...cols.map((c) => el('th', { scope: 'col', text: c })))),
        el('tbody', {}, ...rows)));
      kids.push(el('h3', { text: 'Totals' }), valueView(st.totals), el('h3', { text: 'Counters' }), valueView(st.counters),
        el('h3', { text: 'Summary (60 s)' }), valueView(st.summary));
    }
    box.replaceChildren(...kids);
  }

  // ---- policy ----
  const POLICY_KEYS = ['cooldown_ms', 'auto_switch', 'history_retention', 'monitor_interval_ms', 'hold_rounds', 'flap_window_ms'];
  function field(fs, name, value, path) {
    const id = 'pol-' + path;
    const input = typeof value === 'boolean'
      ? el('input', { type: 'checkbox', id, 'data-key': path })
      : el('input', { type: 'number', id, 'data-key': path, step: Number.isInteger(value) ? '1' : 'any', min: '0', required: '' });
    if (typeof value === 'boolean') input.checked = value; else input.value = String(value);
    fs.append(el('label', { for: id }, name, input));
  }
  async function loadPolicy() {
    const p = await api('GET', '/v1/policy');
    S.policy = p;
    const main = $('policy-main'), th = $('policy-thresholds');
    main.replaceChildren(el('legend', { text: 'Policy' }));
    th.replaceChildren(el('legend', { text: 'Thresholds' }));
    for (const k of POLICY_KEYS) if (k in p) field(main, k, p[k], k);
    for (const k of Object.keys(p.thresholds)) field(th, k, p.thresholds[k], 'thresholds.' + k);
    $('policy-profiles').value = JSON.stringify(p.profiles, null, 1);
    $('policy-builtin').textContent = 'Built-in profiles: ' + p.builtin_profiles.join(', ');
    fillWorkloads(p);
  }
  function fillWorkloads(p) {
    const names = [...p.builtin_profiles, ...Object.keys(p.profiles)];
    const sel = $('optimize-workload'), cur = sel.value;
    sel.replaceChildren(...names.map((n) => el('option', { value: n, text: n })));
    if (names.includes(cur)) sel.value = cur;
  }
  function policyChanges() {
    const p = S.policy, body = {}, thresholds = {};
    for (const input of document.querySelectorAll('#policy-form input[data-key]')) {
      const key = input.getAttribute('data-key');
      const [top, sub] = key.split('.');
      const old = sub ? p.thresholds[sub] : p[top];
      const v = input.type === 'checkbox' ? input.checked : Number(input.value);
      if (input.type !== 'checkbox' && (input.value.trim() === '' || !Number.isFinite(v))) throw new ApiError(0, 'invalid_input', key + ' must be a number');
      if (v === old) continue;
      if (sub) thresholds[sub] = v; else body[top] = v;
    }
    if (Object.keys(thresholds).length) body.thresholds = thresholds;
    const text = $('policy-profiles').value.trim();
    if (text !== JSON.stringify(p.profiles, null, 1)) {
      let profiles;
      try { profiles = JSON.parse(text || '{}'); } catch (e) { throw new ApiError(0, 'invalid_input', 'profiles: ' + e.message); }
      if (!profiles || typeof profiles !== 'object' || Array.isArray(profiles)) throw new ApiError(0, 'invalid_input', 'profiles must be a JSON object');
      for (const name of Object.keys(p.profiles)) if (!(name in profiles)) profiles[name] = null;
      body.profiles = profiles;
    }
    return body;
  }
  $('policy-form').addEventListener('submit', (e) => {
    e.preventDefault();
    let body;
    try { body = policyChanges(); } catch (err) { showError(err); return; }
    if (!Object.keys(body).length) { $('policy-result').textContent = 'nothing changed'; return; }
    api('PUT', '/v1/policy', body).then(() => {
      clearError();
      $('policy-result').textContent = 'saved: ' + Object.keys(body).join(', ');
      return loadPolicy();
    }).catch(showError);
  });

  // ---- monitor ----
  async function loadMonitor() {
    const v = await api('GET', '/v1/monitor');
    const box = $('monitor');
    if (!v.round) { box.replaceChildren(el('p', { class: 'muted', text: 'no monitor round yet' })); return; }
    const r = v.round;
    const rest = Object.assign({}, r);
    for (const k of ['round', 'leader', 'term', 'started_at_ms', 'metrics', 'evaluation', 'action']) delete rest[k];
    const head = el('table', { class: 'kv' });
    kvTable(head, [['round', r.round], ['leader', r.leader], ['term', r.term], ['started', time(r.started_at_ms)], ['action', r.action]]);
    box.replaceChildren(head, el('h3', { text: 'Evaluation' }), valueView(r.evaluation),
      el('h3', { text: 'Metrics' }), valueView(r.metrics),
      ...(Object.keys(rest).length ? [el('h3', { text: 'Other' }), valueView(rest)] : []));
  }

  // ---- actions ----
  $('switch-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const to = $('switch-target').value;
    $('confirm-text').textContent = 'Switch the cluster' + (S.topo ? ' from ' + S.topo.topology : '') + ' to ' + to +
      (S.links ? ' (' + S.links.members.length + ' members)' : '') + '?';
    $('confirm-prediction').textContent = S.features.dry_run
      ? 'Dry-run prediction: loading…'
      : 'Dry-run prediction: not available on this node (no dry-run endpoint).';
    $('confirm').returnValue = '';
    $('confirm').showModal();
    $('confirm-cancel').focus();
  });
  $('confirm').addEventListener('close', () => {
    if ($('confirm').returnValue !== 'ok') return;
    const to = $('switch-target').value;
    const body = { topology: to, request_id: 'ui-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 8) };
    $('action-result').textContent = 'switching to ' + to + '…';
    api('POST', '/v1/topology/switch', body).then((a) => {
      clearError();
      $('action-result').textContent = 'switch accepted: transition #' + (a.transition_id !== undefined ? a.transition_id : fmt(a));
      scheduleRefresh(true);
    }).catch((err) => { $('action-result').textContent = 'switch refused'; showError(err); });
  });
  $('optimize-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const workload = $('optimize-workload').value;
    api('POST', '/v1/topology/optimize', { workload }).then((a) => {
      clearError();
      $('action-result').textContent = 'optimize ' + workload + ': ' + a.status + ' (' + a.topology + ') — ' + a.why;
      scheduleRefresh(true);
    }).catch(showError);
  });
  $('alert-close').addEventListener('click', clearError);

  // ---- demo mode: simulated members, animated ----
  function demo(n) {
    let seed = 42;
    const rnd = () => { seed = (seed * 1664525 + 1013904223) % 4294967296; return seed / 4294967296; };
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    const linksOf = new Map(ids.map((id) => [id, new Set()]));
    const link = (a, b) => { if (a !== b) { linksOf.get(a).add(b); linksOf.get(b).add(a); } };
    const rewire = (count) => {
      for (let i = 0; i < count; i++) {
        const a = ids[Math.floor(rnd() * n)], set = linksOf.get(a);
        if (set.size > 2) { const b = [...set][Math.floor(rnd() * set.size)]; set.delete(b); linksOf.get(b).delete(a); }
        link(a, ids[Math.floor(rnd() * n)]);
      }
    };
    for (const id of ids) for (let k = 0; k < 2; k++) link(id, ids[Math.floor(rnd() * n)]);
    const members = () => ids.map((id) => ({
      id, voter: id <= 3, api_addr: 'simulated', reachable: id % 37 !== 0, error: null,
      stats: id % 37 === 0 ? null : { state: { name: 'steady' }, current: { links: [...linksOf.get(id)] }, other: null },
    }));
    const topo = { topology: 'hyparview', epoch: 1, node_count: n, leader: 1, overlay_config: {}, links: [], current_instance: 1, metrics: null, in_flight: null };
    const update = () => {
      S.links = { served_by: 1, leader: 1, members: members() };
      S.topo = topo;
      renderSummary();
      setModel(buildModel(S.links, topo));
      heat = Math.max(heat, 12);
    };
    update();
    setInterval(() => { rewire(Math.max(1, n >> 4)); update(); }, 2000);
    setInterval(() => { $('graph-caption').textContent = 'demo: ' + n + ' simulated members, ' + stats.fps + ' fps'; }, 1000);
    $('analysis').textContent = 'demo mode: no API calls';
  }

  // ---- start ----
  async function start() {
    if (demoN) { demo(demoN); return; }
    initToken();
    try { S.features = await api('GET', '/ui/features.json'); } catch (e) { S.features = {}; showError(e); }
    $('analysis').textContent = S.features.analysis ? 'analysis available' : 'Not available on this node (no analysis or dry-run endpoint).';
    await Promise.all([refresh(), loadPolicy()]).catch(showError);
    startEvents();
    poll();
  }
  start();
})();
