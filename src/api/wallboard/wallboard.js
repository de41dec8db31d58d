// callwatch wallboard: renders the frames of GET /ws (SPEC §6). Timers run on the
// browser's monotonic clock (performance.now()) from the server's *_elapsed_ms, never
// from the browser's wall clock against a server timestamp. Reconnects by itself with
// ?since=<last seq>&boot=<boot>, and resyncs on a snapshot (a new boot, or too far
// behind). Builds the DOM with textContent only.
'use strict';

(function () {
  const I18N = {
    zh: {
      title: '客服中心实时看板',
      sl_today: '今日服务水平',
      answered_today: '今日接听',
      ringing_now: '振铃中',
      talking_now: '通话中',
      ringing_title: '正在振铃',
      ring_hint: (a, t) => `${a} 秒起黄色，${t} 秒起红色（第60条）`,
      no_ringing: '当前无来电振铃',
      ticker_title: '最新违规提醒',
      no_violations: '暂无违规',
      no_calls: '暂无接听',
      agents_title: '坐席状态',
      sl_title: '今日服务水平（按组）',
      team: '班组',
      service_level: '服务水平',
      within_total: '及时/应答',
      answered: '接听',
      total: '合计',
      rules_title: '今日违规统计',
      top_today: '今日接听排行',
      top_quarter: '本季度接听排行',
      bee: '小蜜蜂奖 · 第104条',
      none_team: '未分组',
      live: '实时',
      connecting: '连接中…',
      reconnecting: '重新连接中…',
      stale: '与服务器的连接已中断，数据可能已过期，正在重新连接…',
      formula: (s) =>
        `服务水平 = ${s} 秒内接听的来电 ÷ 已结束振铃的来电。不计入：${s} 秒内客户放弃的来电、并行振铃中已由其他坐席接听的分支。按来电时间计入当天；无来电时显示“—”。`,
      calls: (n) => `${n} 通`,
      agents_n: (n) => `${n} 名坐席`,
      rules: {
        late_answer: ['超时接听', '第60条 三声/10秒', '第60条'],
        agent_hangup_first: ['先于客户挂机', '第74条', '第74条'],
        survey_missing: ['未转满意度评价', '第76条', '第76条'],
        long_hold: ['保持过长', '第67条', '第67条'],
        poor_audio: ['通话质量差', '第62、88条', '第62、88条'],
        one_way_audio: ['单向通话', '第62、88条', '第62、88条'],
        personal_call: ['私人电话', '第105.4条', '第105.4条'],
      },
      states: {
        idle: '空闲',
        ringing: '振铃',
        talking: '通话中',
        held: '保持中',
        offline: '话机离线',
        unknown: '状态未知',
      },
      lang_button: 'EN',
    },
    en: {
      title: 'Call Centre Live Board',
      sl_today: 'Service level today',
      answered_today: 'Answered today',
      ringing_now: 'Ringing',
      talking_now: 'On calls',
      ringing_title: 'Ringing now',
      ring_hint: (a, t) => `amber from ${a} s, red from ${t} s (Art. 60)`,
      no_ringing: 'No call ringing',
      ticker_title: 'Latest violations',
      no_violations: 'No violation yet',
      no_calls: 'No call answered yet',
      agents_title: 'Agents',
      sl_title: 'Service level today, by team',
      team: 'Team',
      service_level: 'Service level',
      within_total: 'On time/total',
      answered: 'Answered',
      total: 'All teams',
      rules_title: 'Violations today',
      top_today: 'Most calls answered today',
      top_quarter: 'This quarter',
      bee: 'Little Bee award · Art. 104',
      none_team: 'No team',
      live: 'Live',
      connecting: 'Connecting…',
      reconnecting: 'Reconnecting…',
      stale: 'Connection to the server lost: figures may be out of date. Reconnecting…',
      formula: (s) =>
        `Service level = inbound calls answered within ${s} s ÷ inbound calls that stopped ringing, leaving out calls the customer abandoned within ${s} s and fork branches answered by another agent. Calls count on the day they came in; "—" when there are none.`,
      calls: (n) => `${n} calls`,
      agents_n: (n) => `${n} agents`,
      rules: {
        late_answer: ['Late answer', 'Art. 60 (3 rings / 10 s)', 'Art. 60'],
        agent_hangup_first: ['Agent hung up first', 'Art. 74', 'Art. 74'],
        survey_missing: ['No survey transfer', 'Art. 76', 'Art. 76'],
        long_hold: ['Long hold', 'Art. 67', 'Art. 67'],
        poor_audio: ['Poor audio', 'Art. 62, 88', 'Art. 62, 88'],
        one_way_audio: ['One-way audio', 'Art. 62, 88', 'Art. 62, 88'],
        personal_call: ['Personal call', 'Art. 105.4', 'Art. 105.4'],
      },
      states: {
        idle: 'Idle',
        ringing: 'Ringing',
        talking: 'Talking',
        held: 'On hold',
        offline: 'Phone offline',
        unknown: 'Unknown',
      },
      lang_button: '中文',
    },
  };
  const RULES = ['late_answer', 'agent_hangup_first', 'survey_missing', 'long_hold', 'poor_audio', 'one_way_audio', 'personal_call'];
  const STATES = ['idle', 'ringing', 'talking', 'held', 'offline', 'unknown'];

  const params = new URLSearchParams(location.search);
  let lang = params.get('lang') === 'en' ? 'en' : 'zh';
  const PAGE_VERSION = (document.querySelector('meta[name="callwatch-version"]') || {}).content;

  // ---- state ------------------------------------------------------------------------
  const S = {
    boot: null,
    seq: 0,
    config: { threshold_ms: 10000, amber_ms: 7000, long_hold_ms: 60000 },
    legs: new Map(), // leg_id -> {leg, ringAnchor, talkAnchor, holdAnchor}
    agents: new Map(), // extension -> {agent, anchor}
    figures: null,
    ticker: [],
    ringing: 0,
    active: 0,
    freshTicker: 0,
  };
  // Exposed for tests and for looking at a live board from the console.
  window.callwatchBoard = S;

  const $ = (id) => document.getElementById(id);
  const T = () => I18N[lang];

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // The centre's wall time, from the server's `at` (in time.zone) carried forward on the
  // monotonic clock: a TV whose own clock or zone is wrong still shows the right time.
  let clockAnchor = null; // [seconds of the day, performance.now()]
  function noteServerTime(at) {
    const m = /T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?/.exec(at || '');
    if (!m) return;
    const secs = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) + Number(`0.${m[4] || 0}`);
    clockAnchor = [secs, performance.now()];
  }
  function centreClock() {
    if (!clockAnchor) return '--:--:--';
    const s = Math.floor(clockAnchor[0] + (performance.now() - clockAnchor[1]) / 1000) % 86400;
    return [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60].map((n) => String(n).padStart(2, '0')).join(':');
  }

  function anchorOf(ms) {
    return typeof ms === 'number' ? performance.now() - ms : null;
  }

  function fmtDuration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, '0');
    return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
  }

  function hhmmss(rfc3339) {
    // The server renders times in the centre's zone: show its wall time as written.
    const m = /T(\d\d:\d\d:\d\d)/.exec(rfc3339 || '');
    return m ? m[1] : '';
  }

  function teamName(t) {
    return !t || t === 'none' ? T().none_team : t;
  }

  // ---- frames -----------------------------------------------------------------------
  function setLeg(ev) {
    const l = ev.leg;
    const cur = S.legs.get(l.leg_id) || {};
    cur.leg = l;
    if (typeof ev.ring_elapsed_ms === 'number') cur.ringAnchor = anchorOf(ev.ring_elapsed_ms);
    if (typeof ev.talk_elapsed_ms === 'number') cur.talkAnchor = anchorOf(ev.talk_elapsed_ms);
    cur.holdAnchor = typeof ev.hold_elapsed_ms === 'number' ? anchorOf(ev.hold_elapsed_ms) : null;
    if (l.answered_at) cur.ringAnchor = null;
    S.legs.set(l.leg_id, cur);
  }

  function setAgent(a) {
    S.agents.set(a.agent, { agent: a, anchor: anchorOf(a.elapsed_ms) });
  }

  function applySnapshot(f) {
    S.boot = f.boot;
    S.seq = f.seq;
    S.config = f.config || S.config;
    S.legs.clear();
    for (const l of f.legs || []) setLeg(l);
    S.agents.clear();
    for (const a of f.agents || []) setAgent(a);
    S.figures = f.figures;
    S.ticker = (f.ticker || []).slice(0, 30);
    S.ringing = f.ringing || 0;
    S.active = f.active || 0;
    renderStatic();
    if (PAGE_VERSION && f.config && f.config.version && f.config.version !== PAGE_VERSION) {
      // The daemon was upgraded while this page was open: load the new page.
      location.reload();
    }
  }

  function apply(f) {
    switch (f.type) {
      case 'leg.ringing':
      case 'leg.answered':
      case 'leg.held':
      case 'leg.resumed':
        setLeg(f);
        break;
      case 'leg.ended':
        S.legs.delete(f.leg.leg_id);
        break;
      case 'violation':
        if (S.legs.has(f.leg.leg_id) && !f.leg.ended_at) setLeg(f);
        S.ticker.unshift(f.violation);
        S.ticker.length = Math.min(S.ticker.length, 30);
        S.freshTicker = performance.now();
        break;
      case 'agent.state':
        setAgent(f.agent);
        break;
      case 'stats':
        S.figures = f.figures;
        S.ringing = f.ringing;
        S.active = f.active;
        break;
      default:
        break;
    }
  }

  // ---- connection -------------------------------------------------------------------
  let ws = null;
  let backoff = 500;
  let lastFrame = 0;
  let downSince = performance.now();
  let dirty = true;

  function wsUrl() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let q = '';
    if (S.boot !== null) q = `?since=${S.seq}&boot=${encodeURIComponent(S.boot)}`;
    return `${proto}//${location.host}/ws${q}`;
  }

  function reconnect(resync) {
    if (resync) {
      S.boot = null;
      S.seq = 0;
    }
    if (ws) {
      const old = ws;
      ws = null;
      old.onclose = null;
      old.onmessage = null;
      try { old.close(); } catch (e) { /* already closed */ }
    }
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 5000);
    setConn(false);
  }

  function connect() {
    if (ws) return;
    let sock;
    try {
      sock = new WebSocket(wsUrl());
    } catch (e) {
      reconnect(false);
      return;
    }
    ws = sock;
    lastFrame = performance.now();
    sock.onmessage = (m) => {
      if (ws !== sock) return;
      let f;
      try { f = JSON.parse(m.data); } catch (e) { return; }
      lastFrame = performance.now();
      backoff = 500;
      noteServerTime(f.at);
      if (f.type === 'snapshot') {
        applySnapshot(f);
      } else if (f.boot !== S.boot) {
        // Another run of the daemon (restarted): start over from a snapshot.
        reconnect(true);
        return;
      } else if (f.seq <= S.seq) {
        return; // already seen (a replay overlapping what we had)
      } else if (f.seq !== S.seq + 1) {
        reconnect(false); // a gap: ask for what is missing
        return;
      } else {
        S.seq = f.seq;
        apply(f);
      }
      setConn(true);
      dirty = true;
    };
    sock.onclose = () => {
      if (ws === sock) {
        ws = null;
        reconnect(false);
      }
    };
    sock.onerror = () => { /* onclose follows */ };
  }

  function setConn(up) {
    const c = $('conn');
    if (up) {
      c.className = 'conn conn-up';
      c.dataset.state = 'live';
      $('conn-text').textContent = T().live;
      downSince = null;
    } else {
      if (downSince === null) downSince = performance.now();
      c.className = 'conn conn-down';
      c.dataset.state = 'down';
      $('conn-text').textContent = S.boot === null && !S.figures ? T().connecting : T().reconnecting;
    }
  }

  // ---- rendering --------------------------------------------------------------------
  function renderStatic() {
    document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
    document.title = T().title;
    for (const e of document.querySelectorAll('[data-i18n]')) {
      const v = T()[e.dataset.i18n];
      if (typeof v === 'string') e.textContent = v;
    }
    $('lang').textContent = T().lang_button;
    const th = Math.round(S.config.threshold_ms / 1000);
    const am = Math.round(S.config.amber_ms / 1000);
    $('ring-hint').textContent = T().ring_hint(am, th);
    $('formula').textContent = T().formula(th);
    const legend = $('legend');
    legend.textContent = '';
    for (const s of STATES) {
      const sw = el('span', `sw sw-${s}`);
      sw.style.background = getComputedStyle(document.documentElement).getPropertyValue(
        { idle: '--ok', ringing: '--amber', talking: '--talk', held: '--hold', offline: '--red', unknown: '--line' }[s]);
      legend.append(sw, el('span', null, T().states[s]));
    }
    setConn(downSince === null);
  }

  function pct(sl) {
    if (!sl || sl.ratio === null || sl.ratio === undefined) return '—';
    return `${(sl.ratio * 100).toFixed(1)}%`;
  }

  function slClass(sl) {
    if (!sl || sl.ratio === null || sl.ratio === undefined) return '';
    return sl.ratio >= 0.8 ? 'good' : sl.ratio >= 0.6 ? 'warn' : 'bad';
  }

  function renderRinging() {
    const list = $('ringing');
    list.textContent = '';
    const rows = [...S.legs.values()]
      .filter((x) => !x.leg.answered_at && x.ringAnchor !== null && x.ringAnchor !== undefined && x.leg.direction === 'inbound')
      .sort((a, b) => a.ringAnchor - b.ringAnchor);
    for (const x of rows) {
      const l = x.leg;
      const li = el('li', 'ring');
      li.dataset.leg = l.leg_id;
      const who = el('div', 'info');
      who.append(el('div', 'who', l.agent_name ? `${l.agent_name} ${l.agent}` : l.agent));
      who.append(el('div', 'sub', `${teamName(l.team)} · ${l.customer || '—'}`));
      const t = el('div', 'timer', '0:00');
      li.append(who, t);
      x.timerEl = t;
      x.rowEl = li;
      list.append(li);
    }
    $('ringing-empty').hidden = rows.length > 0;
    tickTimers();
  }

  function renderAgents() {
    const box = $('teams');
    box.textContent = '';
    const byTeam = new Map();
    for (const a of S.agents.values()) {
      const t = a.agent.team || 'none';
      if (!byTeam.has(t)) byTeam.set(t, []);
      byTeam.get(t).push(a);
    }
    // Teams in the order of the figures (the same order as the service-level table).
    const figs = new Map(((S.figures && S.figures.teams) || []).map((t) => [t.team, t]));
    const order = [...figs.keys()];
    const rank = (t) => (order.indexOf(t) < 0 ? order.length : order.indexOf(t));
    const teams = [...byTeam.keys()].sort((a, b) => (a === 'none') - (b === 'none') || rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
    for (const t of teams) {
      const sec = el('section', 'team');
      const head = el('div', 'team-head');
      head.append(el('span', 'name', teamName(t)));
      const agents = byTeam.get(t).sort((a, b) => a.agent.agent.localeCompare(b.agent.agent));
      const f = figs.get(t);
      const busy = agents.filter((a) => ['talking', 'held'].includes(a.agent.state)).length;
      head.append(el('span', 'meta', `${T().agents_n(agents.length)} · ${T().talking_now} ${busy} · ${T().service_level} ${pct(f && f.service_level)}`));
      const tiles = el('div', 'tiles');
      for (const a of agents) {
        const g = a.agent;
        const tile = el('div', `tile s-${g.state}`);
        tile.dataset.agent = g.agent;
        tile.dataset.state = g.state;
        tile.append(el('div', 'name', g.name || g.agent));
        const line = el('div', 'line');
        line.append(el('span', 'state', T().states[g.state] || g.state));
        const e = el('span', 'elapsed', '');
        line.append(e);
        tile.append(el('div', 'line ext', g.name ? g.agent : ''), line);
        a.timerEl = e;
        a.tileEl = tile;
        tiles.append(tile);
      }
      sec.append(head, tiles);
      box.append(sec);
    }
    fitAgents(box);
  }

  // Every agent must be on screen: denser tiles until the teams fit their panel.
  const DENSITIES = ['', 'compact', 'dense'];
  let density = 0;
  function fitAgents(box) {
    const panel = box.parentElement;
    const fits = () => box.offsetTop + box.scrollHeight <= panel.clientHeight - 8;
    for (const d of DENSITIES.slice(1)) box.classList.remove(d);
    density = 0;
    while (!fits() && density < DENSITIES.length - 1) {
      density += 1;
      box.classList.add(DENSITIES[density]);
    }
    box.dataset.density = DENSITIES[density] || 'normal';
  }

  function renderFigures() {
    const f = S.figures;
    $('ringing-count').textContent = String(S.ringing || 0);
    $('active-count').textContent = String(S.active || 0);
    if (!f) return;
    const tot = f.total;
    $('sl-total').textContent = pct(tot.service_level);
    $('sl-total').className = `kpi-value ${slClass(tot.service_level)}`;
    $('answered-total').textContent = String(tot.answered);
    const rows = $('sl-rows');
    rows.textContent = '';
    const addRow = (name, t, cls) => {
      const tr = el('tr', cls);
      tr.dataset.team = name;
      tr.append(el('td', null, name));
      const p = el('td', `num pct ${slClass(t.service_level)}`, pct(t.service_level));
      tr.append(p);
      tr.append(el('td', 'num', `${t.service_level.within}/${t.service_level.total}`));
      tr.append(el('td', 'num', t.answered));
      rows.append(tr);
    };
    for (const t of f.teams) addRow(teamName(t.team), t, '');
    addRow(T().total, tot, 'total');
    const rr = $('rule-rows');
    rr.textContent = '';
    for (const r of RULES) {
      const n = (tot.violations && tot.violations[r]) || 0;
      const tr = el('tr');
      tr.dataset.rule = r;
      const [name, art] = T().rules[r];
      const td = el('td');
      td.append(el('span', 'rn', name), document.createTextNode(' '), el('span', 'art', art));
      tr.append(td, el('td', `count ${n > 0 ? 'nz' : ''}`, n));
      rr.append(tr);
    }
    const leaders = (id, list) => {
      const ol = $(id);
      ol.textContent = '';
      if (!list || list.length === 0) ol.append(el('li', 'none', T().no_calls));
      (list || []).forEach((a, i) => {
        const li = el('li');
        li.append(el('span', 'rank', i + 1), el('span', 'nm', a.name || a.agent_id), el('span', 'n', a.answered));
        ol.append(li);
      });
    };
    leaders('top-today', f.top_today);
    leaders('top-quarter', f.top_quarter);
  }

  function renderTicker() {
    const ol = $('ticker');
    ol.textContent = '';
    const fresh = performance.now() - S.freshTicker < 10000;
    S.ticker.slice(0, 12).forEach((v, i) => {
      const li = el('li', `tick ${i === 0 && fresh ? 'fresh' : ''}`);
      li.dataset.rule = v.rule;
      li.append(el('span', 'when', hhmmss(v.at)));
      const what = el('span', 'what');
      const who = v.name ? `${v.name} ${v.agent}` : v.agent;
      const [name, , art] = T().rules[v.rule] || [v.rule, v.article, v.article];
      what.append(el('span', 'who', who), document.createTextNode(' · '), el('span', 'rule', name), document.createTextNode(` (${art})`));
      li.append(what);
      ol.append(li);
    });
    $('ticker-empty').hidden = S.ticker.length > 0;
  }

  function tickTimers() {
    const now = performance.now();
    const amber = S.config.amber_ms;
    const red = S.config.threshold_ms;
    for (const x of S.legs.values()) {
      if (!x.timerEl || x.ringAnchor === null || x.ringAnchor === undefined) continue;
      const ms = now - x.ringAnchor;
      x.timerEl.textContent = fmtDuration(ms);
      x.rowEl.classList.toggle('amber', ms >= amber && ms < red);
      x.rowEl.classList.toggle('red', ms >= red);
      x.rowEl.dataset.level = ms >= red ? 'red' : ms >= amber ? 'amber' : 'normal';
    }
    for (const a of S.agents.values()) {
      if (!a.timerEl) continue;
      if (a.anchor === null || a.agent.state === 'unknown') {
        a.timerEl.textContent = '';
        continue;
      }
      const ms = now - a.anchor;
      a.timerEl.textContent = fmtDuration(ms);
      a.tileEl.classList.toggle('over', a.agent.state === 'held' && ms >= S.config.long_hold_ms);
    }
    $('clock').textContent = centreClock();
    const stale = downSince !== null && now - downSince > 3000 && S.figures !== null;
    document.body.classList.toggle('is-stale', stale);
    $('stale').hidden = !stale;
  }

  function render() {
    if (dirty) {
      dirty = false;
      renderRinging();
      renderAgents();
      renderFigures();
      renderTicker();
    }
    tickTimers();
  }

  // ---- start ------------------------------------------------------------------------
  function start() {
    $('lang').addEventListener('click', () => {
      lang = lang === 'en' ? 'zh' : 'en';
      const p = new URLSearchParams(location.search);
      if (lang === 'en') p.set('lang', 'en'); else p.delete('lang');
      const qs = p.toString();
      history.replaceState(null, '', qs ? `?${qs}` : location.pathname);
      renderStatic();
      dirty = true;
      render();
    });
    renderStatic();
    connect();
    setInterval(render, 200);
    // Watchdog: the server sends stats every second; silence means a dead link.
    setInterval(() => {
      if (ws && performance.now() - lastFrame > 5000) reconnect(false);
    }, 1000);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
