// leakwatch console: polls leakwatch's own JSON endpoints and follows one log source over SSE.
// No library, nothing fetched from elsewhere; built for a strict Content-Security-Policy (no
// inline script, no style attributes in markup: styles are set through the CSSOM).
'use strict';
(() => {
  const body = document.body;
  const MAX_LINES = Math.max(10, Number(body.dataset.maxLogLines) || 1000);
  const POLL_MS = Math.min(5000, Math.max(250, Number(body.dataset.intervalMs) || 1000));
  const SVG = 'http://www.w3.org/2000/svg'; // a namespace name, never fetched
  const LEVELS = [[0.9, 'critical'], [0.8, 'warning'], [0.7, 'info']];
  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function row(tbody, cells, cls) {
    const tr = el('tr', cls);
    for (const c of cells) {
      const td = el('td');
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? '–' : String(c);
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
    return tr;
  }
  function bytes(n) {
    if (n === null || n === undefined) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + ' ' + units[i];
  }
  function duration(s) {
    if (s === null || s === undefined || !isFinite(s)) return '–';
    if (s < 90) return Math.round(s) + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    if (s < 172800) return (s / 3600).toFixed(1) + ' h';
    return (s / 86400).toFixed(1) + ' d';
  }
  function clock(t) {
    return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
  }
  function pct(r) {
    return r === null || r === undefined ? '–' : (r * 100).toFixed(1) + ' %';
  }
  async function getJSON(path) {
    const r = await fetch(path, { cache: 'no-store', credentials: 'same-origin' });
    if (!r.ok) throw new Error(path + ' answered ' + r.status);
    return r.json();
  }
  function problem(text) {
    const p = $('problem');
    p.hidden = !text;
    p.textContent = text || '';
  }

  // --- history and the memory chart -------------------------------------------------------
  const history = { points: [], cursor: 0, retention: 3600 };

  async function pollHistory() {
    for (let pages = 0; pages < 20; pages++) {
      const page = await getJSON('/api/history?limit=5000&after_seq=' + history.cursor);
      if (page.newest_seq < history.cursor) {
        // leakwatch restarted: start over.
        history.points = [];
        history.cursor = 0;
        continue;
      }
      history.retention = page.retention_seconds;
      history.points.push(...page.points);
      history.cursor = page.next_after_seq;
      if (!page.more) break;
    }
    const newest = history.points.length ? history.points[history.points.length - 1].at : 0;
    const oldest = newest - history.retention;
    let drop = 0;
    while (drop < history.points.length && history.points[drop].at < oldest) drop++;
    if (drop) history.points.splice(0, drop);
    drawMemory();
    drawFigures();
  }

  function drawMemory() {
    const chart = $('memory-chart');
    const pts = history.points.filter((p) => p.used_bytes !== null && p.limit_bytes !== null);
    chart.replaceChildren();
    chart.dataset.points = String(pts.length);
    const W = 1200, H = 300, L = 74, R = 44, T = 10, B = 22;
    if (!pts.length) {
      chart.appendChild(svg('text', { x: W / 2 - 60, y: H / 2 }, 'waiting for samples…'));
      return;
    }
    const last = pts[pts.length - 1];
    const limit = last.limit_bytes;
    const t1 = last.at;
    const span = Math.min(history.retention, Math.max(60, t1 - pts[0].at));
    const t0 = t1 - span;
    const tEnd = t1 + span * 0.25;
    let ymax = limit * 1.05;
    for (const p of pts) ymax = Math.max(ymax, p.used_bytes * 1.05, (p.rss_bytes || 0) * 1.05);
    const x = (t) => L + ((t - t0) / (tEnd - t0)) * (W - L - R);
    const y = (v) => T + (1 - v / ymax) * (H - T - B);
    const ratio = last.utilization;
    const level = LEVELS.find(([l]) => ratio !== null && ratio >= l);
    // The 70/80/90 % bands; the one the latest value is in is lit.
    const bands = [[0.7, 0.8, 'info'], [0.8, 0.9, 'warning'], [0.9, 1.0, 'critical']];
    for (const [lo, hi, name] of bands) {
      const active = level && level[1] === name ? ' active' : '';
      chart.appendChild(svg('rect', {
        class: 'band band-' + name + active, x: L, width: W - L - R, y: y(limit * hi), height: y(limit * lo) - y(limit * hi),
        'data-band': name,
      }));
    }
    for (const f of [0, 0.5, 0.7, 0.8, 0.9, 1.0]) {
      chart.appendChild(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(limit * f), y2: y(limit * f) }));
      chart.appendChild(svg('text', { x: 4, y: y(limit * f) + 4 }, bytes(limit * f)));
      if (f) chart.appendChild(svg('text', { x: W - R + 4, y: y(limit * f) + 4 }, Math.round(f * 100) + ' %'));
    }
    chart.appendChild(svg('line', { class: 'line-limit', x1: L, x2: W - R, y1: y(limit), y2: y(limit) }));
    chart.appendChild(svg('line', { class: 'now', x1: x(t1), x2: x(t1), y1: T, y2: H - B }));
    chart.appendChild(svg('text', { x: L, y: H - 6 }, clock(t0)));
    chart.appendChild(svg('text', { x: x(t1) - 24, y: H - 6 }, clock(t1)));
    const line = (key, cls) => {
      const d = pts.filter((p) => p[key] !== null).map((p) => x(p.at).toFixed(1) + ',' + y(p[key]).toFixed(1)).join(' ');
      if (d) chart.appendChild(svg('polyline', { class: cls, points: d }));
    };
    if (last.basis !== 'host_rss') line('rss_bytes', 'line-rss');
    line('used_bytes', 'line-used');
    const stl = last.seconds_to_limit;
    let predicted = 'no crossing predicted';
    if (stl !== null && isFinite(stl)) {
      const tc = t1 + stl;
      const te = Math.min(tc, tEnd);
      const ve = last.used_bytes + (limit - last.used_bytes) * ((te - t1) / Math.max(stl, 1e-9));
      chart.appendChild(svg('line', { class: 'line-predicted', x1: x(t1), y1: y(last.used_bytes), x2: x(te), y2: y(ve) }));
      if (tc <= tEnd) chart.appendChild(svg('circle', { class: 'crossing', cx: x(tc), cy: y(limit), r: 4 }));
      predicted = 'limit predicted in ' + duration(stl) + ' (' + clock(tc) + ')';
    }
    const summary = $('memory-summary');
    summary.textContent = bytes(last.used_bytes) + ' of ' + bytes(limit) + ' (' + pct(ratio) + ', ' + last.basis + ') · ' +
      'RSS ' + bytes(last.rss_bytes) + ' · ' + predicted + ' · ' + pts.length + ' points';
    const badge = $('level');
    badge.className = 'chip level-' + (level ? level[1] : 'ok');
    badge.textContent = level ? level[1] + ' ≥ ' + Math.round(level[0] * 100) + ' %' : 'below 70 %';
    $('updated').textContent = 'sample ' + last.seq + ' at ' + clock(t1);
  }

  function drawFigures() {
    const last = history.points[history.points.length - 1];
    if (!last) return;
    const states = $('conn-states').tBodies[0];
    states.replaceChildren();
    const conns = Object.entries(last.connections);
    if (!conns.length) row(states, ['no socket held', '']);
    for (const [state, n] of conns) row(states, [state, n]).dataset.state = state;
  }

  // --- status: figures, peers, structures, cleanups, OOM count ---------------------------------
  let oomEndpoint = false;

  async function pollStatus() {
    const s = await getJSON('/status');
    const t = s.snapshot.target;
    $('target').textContent = t.name + ' · ' + t.matched + ' process' + (t.matched === 1 ? '' : 'es') + ' · leakwatch ' + s.leakwatch.version;
    const m = t.memory || {};
    const fig = $('figures').tBodies[0];
    fig.replaceChildren();
    const fdUse = t.fds && t.fds.utilization !== null && t.fds.utilization !== undefined ? ' (' + pct(t.fds.utilization) + ')' : '';
    row(fig, ['open fds', (m.open_fds ?? '–') + ' of ' + (m.max_fds ?? '–') + fdUse]).dataset.figure = 'fds';
    row(fig, ['threads', m.threads]).dataset.figure = 'threads';
    const last = history.points[history.points.length - 1];
    const rate = last ? last.log_lines_per_second : null;
    row(fig, ['log lines/s (all sources)', rate === null || rate === undefined ? null : rate.toFixed(1)]).dataset.figure = 'log_rate';
    row(fig, ['children', t.tasks ? t.tasks.children + (t.tasks.stale ? ' (' + t.tasks.stale + ' stale)' : '') : null]).dataset.figure = 'children';
    if (t.pids) row(fig, ['pids (cgroup)', (t.pids.current ?? '–') + ' of ' + (t.pids.max ?? 'max')]);
    if (t.sockets) {
      row(fig, ['stale sockets', t.sockets.stale]);
      row(fig, ['accept queue', pct(t.sockets.accept_queue_utilization)]);
    }
    const peers = $('peers').tBodies[0];
    peers.replaceChildren();
    for (const p of (t.sockets && t.sockets.peers) || []) {
      const bar = el('span', 'bar' + (p.utilization >= 0.9 ? ' high' : ''));
      bar.style.width = Math.min(100, Math.round(p.utilization * 100)) + 'px';
      const use = el('span');
      use.append(bar, ' ' + pct(p.utilization));
      row(peers, [p.name, p.connections, p.limit, use]).dataset.peer = p.name;
    }
    if (!peers.rows.length) row(peers, ['no peer group configured', '', '', '']);
    if (!oomEndpoint) {
      const kills = s.snapshot.oom ? s.snapshot.oom.kills_total : t.cgroup ? t.cgroup.oom_kills : null;
      $('oom-count').textContent = kills === null || kills === undefined ? 'unknown (no cgroup)' : String(kills);
    }
    const st = $('structures-table').tBodies[0];
    st.replaceChildren();
    for (const x of s.structures) {
      row(st, [x.name, x.source || '', x.len, x.max, x.capacity, bytes(x.bytes)]).dataset.structure = x.name;
    }
    const c = s.cleanup;
    $('cleanup-summary').textContent = c
      ? 'cleanups: ' + c.performed.interval + ' interval, ' + c.performed.memory + ' memory, ' + c.performed.admin +
        ' admin · freed ' + bytes(c.freed_bytes_total) + ' in all' +
        (c.last ? ' · last ' + c.last.trigger + ' at ' + clock(c.last.at) + ' freed ' + bytes(c.last.freed_bytes) : '') +
        ' · leakwatch RSS ' + bytes(s.leakwatch.rss_bytes)
      : 'the cleanup task does not run';
  }

  // GET /oom (where served): {target, up, kills_total, inferred_total, last_kill_at, max_reports,
  // reports: newest first, each {at, detection, seen_by, kills, pids, cgroup, exit, samples, logs}}.
  async function pollOom() {
    const r = await getJSON('/oom');
    const reports = r.reports || [];
    const count = $('oom-count');
    count.textContent = String(r.kills_total ?? reports.length) + (r.inferred_total ? ' (' + r.inferred_total + ' inferred)' : '');
    count.dataset.kills = String(r.kills_total ?? reports.length);
    const box = $('oom-reports');
    const open = new Set([...box.querySelectorAll('details[open]')].map((d) => d.dataset.at));
    box.replaceChildren();
    box.appendChild(el('div', 'muted', (r.up === false ? 'target down' : 'target up') +
      (r.last_kill_at ? ' · last kill ' + clock(r.last_kill_at) : '') + ' · ' + reports.length + ' of ' + (r.max_reports ?? '–') + ' reports'));
    for (const rep of reports) {
      const d = el('details', 'oom-report');
      d.dataset.at = String(rep.at);
      d.open = open.has(d.dataset.at); // a report the reader opened stays open across polls
      const last = (rep.samples || [])[rep.samples ? rep.samples.length - 1 : 0];
      const head = clock(rep.at) + ' · ' + rep.kills + ' kill' + (rep.kills === 1 ? '' : 's') + ' · ' + rep.detection + ' (' + rep.seen_by + ')' +
        (rep.pids && rep.pids.length ? ' · pid ' + rep.pids.join(', ') : '') + (rep.exit ? ' · ' + rep.exit : '') +
        (last ? ' · before: ' + bytes(last.cgroup_working_set_bytes ?? last.rss_bytes) + ' of ' + bytes(last.cgroup_limit_bytes) + ' (' + pct(last.utilization_ratio) + ')' : '');
      d.appendChild(el('summary', '', head));
      for (const [source, lines] of Object.entries(rep.logs || {})) {
        d.appendChild(el('div', 'muted', source + ':'));
        for (const line of lines.slice(-5)) d.appendChild(el('div', 'oom-log', line));
      }
      box.appendChild(d);
    }
  }

  // --- alerts ------------------------------------------------------------------------------
  async function pollAlerts() {
    const [current, hist] = await Promise.all([getJSON('/alerts'), getJSON('/alerts/history')]);
    const tb = $('alerts-table').tBodies[0];
    tb.replaceChildren();
    const active = current.alerts.filter((a) => a.state === 'firing' || a.state === 'pending');
    const order = { firing: 0, pending: 1 };
    active.sort((a, b) => order[a.state] - order[b.state] || a.level - b.level);
    for (const a of active) {
      const tr = row(tb, [a.alert, a.severity, a.state, a.value.toFixed(3), a.active_since ? clock(a.active_since) : null],
        'state-' + a.state);
      tr.title = a.summary;
      Object.assign(tr.dataset, { alert: a.alert, severity: a.severity, state: a.state });
    }
    $('alerts-none').hidden = active.length > 0;
    const tr = $('transitions').tBodies[0];
    tr.replaceChildren();
    for (const t of hist.transitions.slice(0, 15)) {
      row(tr, [clock(t.at), t.alert, t.severity, t.from + ' → ' + t.to, t.value.toFixed(3)]);
    }
  }

  // --- live logs -----------------------------------------------------------------------------
  const logs = { source: '', es: null, lastSeq: 0, paused: false, lines: [], queue: [], received: 0, missed: 0, filter: null, timer: 0 };
  const box = $('log-lines');

  function connect() {
    if (!logs.source || logs.paused) return;
    const start = logs.lastSeq > 0 ? 'after_seq=' + logs.lastSeq : 'backlog=' + Math.min(MAX_LINES, 200);
    const es = new EventSource('/logs/' + encodeURIComponent(logs.source) + '/stream?format=json&' + start);
    logs.es = es;
    $('log-status').textContent = 'following ' + logs.source;
    es.onmessage = (e) => {
      const line = JSON.parse(e.data);
      if (line.seq <= logs.lastSeq) return; // never twice
      logs.lastSeq = line.seq;
      logs.received++;
      logs.queue.push(line);
      schedule();
    };
    es.addEventListener('missed', (e) => {
      const m = JSON.parse(e.data);
      logs.missed += m.missed;
      logs.queue.push({ missed: m.missed });
      if (m.resume_seq) logs.lastSeq = Math.max(logs.lastSeq, m.resume_seq - 1);
      schedule();
    });
    es.addEventListener('reset', () => {
      logs.lastSeq = 0;
      logs.queue.push({ reset: true });
      schedule();
    });
    es.onerror = () => {
      // Reconnect from the last line seen (the browser's own retry would repeat after_seq).
      es.close();
      if (logs.es !== es || logs.paused) return;
      logs.es = null;
      $('log-status').textContent = 'reconnecting…';
      setTimeout(connect, 1000);
    };
  }

  function disconnect() {
    if (logs.es) logs.es.close();
    logs.es = null;
  }

  function schedule() {
    if (!logs.timer) logs.timer = requestAnimationFrame(flush);
  }

  function render(item) {
    if (item.missed !== undefined) return el('div', 'missed', 'missed ' + item.missed + ' line' + (item.missed === 1 ? '' : 's'));
    if (item.reset) return el('div', 'missed', 'leakwatch restarted: replaying its buffer');
    const d = el('div', 'line' + (item.cut ? ' cut' : ''));
    d.dataset.seq = String(item.seq);
    d.append(el('span', 'seq', item.seq), el('span', 'ts', item.ts ? item.ts.slice(11, 23) : ''), el('span', 'text', item.text));
    if (!passes(item)) d.classList.add('hidden');
    return d;
  }

  function passes(item) {
    return item.text === undefined || !logs.filter || logs.filter(item.text);
  }

  // Appends what arrived since the last frame, in one DOM change, and keeps at most MAX_LINES.
  function flush() {
    logs.timer = 0;
    let batch = logs.queue;
    logs.queue = [];
    logs.lines.push(...batch);
    if (logs.lines.length > MAX_LINES) logs.lines.splice(0, logs.lines.length - MAX_LINES);
    if (batch.length > MAX_LINES) batch = batch.slice(batch.length - MAX_LINES);
    const stick = box.scrollTop + box.clientHeight >= box.scrollHeight - 30;
    const frag = document.createDocumentFragment();
    for (const item of batch) frag.appendChild(render(item));
    box.appendChild(frag);
    let extra = box.childElementCount - MAX_LINES;
    while (extra-- > 0) box.firstElementChild.remove();
    if (stick) box.scrollTop = box.scrollHeight;
    status();
  }

  function status() {
    const shown = box.querySelectorAll('.line:not(.hidden)').length;
    $('log-status').textContent = (logs.paused ? 'paused at ' + logs.lastSeq : 'following ' + logs.source) +
      ' · ' + shown + ' shown · ' + logs.received + ' received (keeps ' + MAX_LINES + ')';
    const missed = $('log-missed');
    missed.hidden = logs.missed === 0;
    missed.textContent = 'missed ' + logs.missed + ' line' + (logs.missed === 1 ? '' : 's');
  }

  function setFilter() {
    const input = $('log-filter');
    const text = input.value;
    input.classList.remove('invalid');
    logs.filter = null;
    if (text) {
      if ($('log-filter-mode').value === 'regex') {
        try {
          const re = new RegExp(text);
          logs.filter = (s) => re.test(s);
        } catch (e) {
          input.classList.add('invalid');
          input.title = String(e.message);
        }
      } else {
        logs.filter = (s) => s.includes(text);
      }
    }
    for (const d of box.querySelectorAll('.line')) {
      const t = d.querySelector('.text');
      d.classList.toggle('hidden', Boolean(logs.filter) && !logs.filter(t ? t.textContent : ''));
    }
    box.scrollTop = box.scrollHeight;
    status();
  }

  function togglePause() {
    const b = $('log-pause');
    logs.paused = !logs.paused;
    b.textContent = logs.paused ? 'Resume' : 'Pause';
    b.classList.toggle('paused', logs.paused);
    if (logs.paused) disconnect(); else connect();
    status();
  }

  async function startLogs() {
    const list = await getJSON('/logs');
    const select = $('log-source');
    select.replaceChildren();
    for (const s of list.sources) select.appendChild(el('option', '', s.name)).value = s.name;
    if (!list.sources.length) {
      $('log-status').textContent = 'no log source configured';
      return;
    }
    const wanted = new URLSearchParams(location.search).get('source');
    logs.source = list.sources.some((s) => s.name === wanted) ? wanted : list.sources[0].name;
    select.value = logs.source;
    select.addEventListener('change', () => {
      disconnect();
      Object.assign(logs, { source: select.value, lastSeq: 0, lines: [], queue: [], received: 0, missed: 0 });
      box.replaceChildren();
      connect();
    });
    connect();
  }

  // --- polling --------------------------------------------------------------------------------
  async function tick(name, fn) {
    try {
      await fn();
      if (problem.failed === name) problem('');
    } catch (e) {
      problem.failed = name;
      problem(String(e.message || e));
    }
  }

  async function loop() {
    await Promise.all([tick('history', pollHistory), tick('alerts', pollAlerts), tick('status', pollStatus),
      oomEndpoint ? tick('oom', pollOom) : null]);
    setTimeout(loop, POLL_MS);
  }

  async function main() {
    $('log-filter').addEventListener('input', setFilter);
    $('log-filter-mode').addEventListener('change', setFilter);
    $('log-pause').addEventListener('click', togglePause);
    // The OOM reports endpoint, when this leakwatch serves one (its index lists it).
    try {
      const index = await (await fetch('/index.txt', { cache: 'no-store' })).text();
      oomEndpoint = /^\/oom\s/m.test(index);
    } catch (e) {
      oomEndpoint = false;
    }
    await tick('logs', startLogs);
    loop();
  }

  main();
})();
