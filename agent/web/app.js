// The gateway's page: live values from /api/events (one event per poll), the history plot from
// /api/history. Values arrive as integers (mW, mWh); names are set as text, never as markup.
'use strict';

const $ = (selector) => document.querySelector(selector);

/** `mw` milliwatts for people: W below 1 kW, kW above; a dash when there is no reading. */
function power(mw) {
  if (mw === null || mw === undefined) return '—';
  const w = mw / 1000;
  return Math.abs(w) >= 1000 ? `${(w / 1000).toFixed(2)} kW` : `${Math.round(w)} W`;
}

/** `mwh` milliwatt-hours as kWh. */
function energy(mwh) {
  return `${(mwh / 1e6).toFixed(2)} kWh`;
}

/** The element of `list` keyed `name`, made by `make` the first time. */
function keyed(list, name, make) {
  for (const child of list.children) {
    if (child.dataset.name === name) return child;
  }
  const made = make();
  made.dataset.name = name;
  list.append(made);
  return made;
}

/** The error an answer carries (`{"error"}`), or its status. */
async function said(response) {
  try {
    return (await response.json()).error || response.statusText;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function element(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function showGrid(live) {
  const card = $('#grid-card');
  const grid = live.channels.find((c) => c.name === live.grid);
  card.hidden = !grid;
  if (!grid) return;
  card.querySelector('.name').textContent = grid.name === 'grid' ? 'grid' : `grid (${grid.name})`;
  card.querySelector('.power').textContent = power(grid.power_mw);
  const mw = grid.power_mw ?? 0;
  card.classList.toggle('importing', mw > 0);
  card.classList.toggle('exporting', mw < 0);
  card.querySelector('.direction').textContent =
    grid.fault ? grid.fault : mw > 0 ? 'importing' : mw < 0 ? 'exporting' : 'balanced';
  const limit = live.control && live.control.import_limit_mw;
  card.querySelector('.limit').textContent = limit ? `import limit ${power(limit)}` : '';
}

function showChannels(live) {
  const list = $('#channels');
  for (const c of live.channels) {
    if (c.name === live.grid) continue;
    const card = keyed(list, c.name, () => {
      const made = element('div', 'card');
      made.append(element('div', 'name', c.name), element('div', 'power'),
        element('div', 'energy'), element('div', 'fault'));
      return made;
    });
    card.querySelector('.power').textContent = power(c.power_mw);
    card.querySelector('.energy').textContent =
      `in ${energy(c.import_mwh)} · out ${energy(c.export_mwh)}`;
    card.querySelector('.fault').textContent = c.fault || '';
    card.classList.toggle('importing', (c.power_mw ?? 0) > 0);
    card.classList.toggle('exporting', (c.power_mw ?? 0) < 0);
  }
}

function showRows(section, list, items, describe, extra) {
  $(section).hidden = items.length === 0;
  for (const item of items) {
    const row = keyed($(list), item.name, () => {
      const made = element('li');
      made.append(element('span', 'name', item.name), element('span', 'pill'));
      if (extra) made.append(extra(item));
      return made;
    });
    const [text, on] = describe(item);
    const pill = row.querySelector('.pill');
    pill.textContent = text;
    pill.classList.toggle('on', on);
  }
}

/** A section of facts, `rows` of [name, value], hidden when there are none. */
function showFacts(section, list, rows) {
  $(section).hidden = !rows;
  if (!rows) return;
  $(list).replaceChildren(...rows.flatMap(([k, v]) => [element('dt', '', k), element('dd', '', v)]));
}

function time(ms) {
  return ms ? new Date(ms).toLocaleString() : 'none yet';
}

function controlRows(control) {
  return control && [
    ['grid', control.stale ? 'stale: loads in their safe states' : power(control.grid_mw)],
    ['import limit', control.import_limit_mw === null ? 'none' : power(control.import_limit_mw)],
    ['export limit', control.export_limit_mw === null ? 'none' : power(control.export_limit_mw)],
  ];
}

function dialogueRows(d) {
  if (!d) return null;
  const rows = [['community', `${d.community} · ${d.peers} peers`], ['last slot', time(d.slot_ms)]];
  if (d.no_trade) return [...rows, ['outcome', `no trade: ${d.no_trade}`]];
  if (d.price === null) return rows;
  return [...rows,
    ['price', `${(d.price / 1e6).toFixed(4)} per kWh`],
    ['allocation', power(d.allocation_mw)],
    ['kept in the community', power(d.kept_local_mw)]];
}

function ledgerRows(l) {
  return l && [
    ['last commitment', time(l.last_interval_ms)],
    ['last settlement', time(l.last_slot_ms)],
    ['waiting for the chain', String(l.queued)],
    ['credits', l.credits || 'not read yet'],
    ...(l.error ? [['chain', l.error]] : []),
  ];
}

function show(live) {
  $('#gateway').textContent = live.gateway;
  document.title = `${live.gateway} · DAISEE`;
  const status = $('#status');
  status.className = 'live';
  status.dataset.atMs = live.at_ms;
  status.textContent = `live · ${new Date(live.at_ms).toLocaleTimeString()}`;
  showGrid(live);
  showChannels(live);
  showRows('#relays-section', '#relays', live.relays, (r) => [
    `${r.state === null ? r.fault : r.state} · ${r.mode}`, r.state === 'on'], switches);
  showRows('#inverters-section', '#inverters', live.inverters, (i) => [
    `${i.fault ? i.fault : i.limit_percent === null ? 'full power' : `${i.limit_percent} %`} · ${i.mode}`,
    false]);
  showFacts('#control-section', '#control', controlRows(live.control));
  showFacts('#dialogue-section', '#dialogue', dialogueRows(live.dialogue));
  showFacts('#ledger-section', '#ledger', ledgerRows(live.ledger));
  login.offer(live.writes);
  history.offer(live);
}

/** The on, off and auto buttons of a relay, shown once logged in. */
function switches(relay) {
  const group = element('span', 'switch');
  group.hidden = !login.csrf;
  for (const state of ['on', 'off', 'auto']) {
    const button = element('button', '', state);
    button.type = 'button';
    button.dataset.state = state;
    button.addEventListener('click', () => login.write(`/api/relay/${encodeURIComponent(relay.name)}`, { state }));
    group.append(button);
  }
  return group;
}

/** Logging in, when the gateway lets the page write: the session's CSRF token, which each
 * write carries in a header. */
const login = {
  csrf: null,
  offered: false,

  async offer(writes) {
    if (!writes) {
      $('#login').hidden = true;
      $('#logged-in').hidden = true;
      return;
    }
    if (this.offered) return;
    this.offered = true;
    $('#login').addEventListener('submit', (e) => { e.preventDefault(); this.enter(); });
    $('#limit-form').addEventListener('submit', (e) => { e.preventDefault(); this.setLimit(); });
    $('#logout').addEventListener('click', () => this.leave());
    const response = await fetch('/api/session');
    this.show(response.ok ? (await response.json()).csrf : null);
  },

  show(csrf) {
    this.csrf = csrf;
    $('#login').hidden = !!csrf;
    $('#logged-in').hidden = !csrf;
    $('#limit-form').hidden = !csrf;
    for (const group of document.querySelectorAll('.switch')) group.hidden = !csrf;
  },

  async enter() {
    const error = $('#login-error');
    error.hidden = true;
    const response = await fetch('/api/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ password: $('#password').value }),
    });
    $('#password').value = '';
    if (response.ok) {
      this.show((await response.json()).csrf);
    } else {
      error.textContent = await said(response);
      error.hidden = false;
    }
  },

  async leave() {
    await this.write('/api/logout', {});
    this.show(null);
  },

  /** The import limit from its field, written to the configuration. */
  async setLimit() {
    const error = $('#limit-error');
    error.hidden = true;
    const response = await this.write('/api/limit/import', { watts: Number($('#import-limit').value) });
    if (!response.ok) {
      error.textContent = await said(response);
      error.hidden = false;
    }
  },

  async write(path, body) {
    const response = await fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': this.csrf || '' },
      body: JSON.stringify(body),
    });
    if (response.status === 401) this.show(null);
    return response;
  },
};

function follow() {
  const events = new EventSource('/api/events');
  events.addEventListener('snapshot', (e) => show(JSON.parse(e.data)));
  events.addEventListener('error', () => {
    const status = $('#status');
    status.className = 'waiting';
    status.textContent = 'reconnecting…';
    // Refused (too many pages open): the browser gives up, so try again in a while.
    if (events.readyState === EventSource.CLOSED) setTimeout(follow, 5000);
  });
}

/** The history plot: one channel over an hour, a day or a week, read again every minute. */
const history = {
  channel: null,
  span: 'hour',
  plot: null,
  timer: null,
  /** The latest request: an answer to an earlier one is dropped. */
  asked: 0,

  /** Fills the channel list from the first live values, the grid chosen first. */
  offer(live) {
    if (this.channel !== null) return;
    const select = $('#history-channel');
    for (const c of live.channels) select.append(new Option(c.name, c.name));
    this.channel = live.grid || (live.channels[0] && live.channels[0].name) || null;
    if (this.channel === null) return;
    select.value = this.channel;
    select.addEventListener('change', () => { this.channel = select.value; this.load(); });
    for (const button of document.querySelectorAll('[data-span]')) {
      button.addEventListener('click', () => {
        this.span = button.dataset.span;
        for (const b of document.querySelectorAll('[data-span]')) {
          b.setAttribute('aria-pressed', String(b === button));
        }
        this.load();
      });
    }
    window.addEventListener('resize', () => this.resize());
    this.load();
  },

  async load() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), 60000);
    const error = $('#history-error');
    const query = new URLSearchParams({ channel: this.channel, span: this.span });
    const asked = ++this.asked;
    try {
      const response = await fetch(`/api/history?${query}`);
      if (!response.ok) throw new Error(await said(response));
      const body = await response.json();
      if (asked !== this.asked) return;
      error.hidden = true;
      this.draw(body);
    } catch (e) {
      error.textContent = `history: ${e.message}`;
      error.hidden = false;
    }
  },

  draw(body) {
    const times = body.at_ms.map((t) => t / 1000);
    const watts = body.power_mw.map((p) => (p === null ? null : p / 1000));
    const box = $('#plot');
    box.dataset.points = String(watts.filter((w) => w !== null).length);
    box.dataset.stepMs = String(body.step_ms);
    if (this.plot) this.plot.destroy();
    const ink = getComputedStyle(document.body).color;
    const axis = { stroke: ink, grid: { stroke: 'rgba(128,128,128,0.2)' } };
    this.plot = new uPlot({
      width: box.clientWidth,
      height: 240,
      legend: { show: true },
      series: [
        {},
        { label: `${body.channel} (W)`, stroke: '#1e88e5', fill: 'rgba(30,136,229,0.12)', width: 1.5 },
      ],
      axes: [axis, { ...axis, size: 60 }],
    }, [times, watts], box);
  },

  resize() {
    if (this.plot) this.plot.setSize({ width: $('#plot').clientWidth, height: 240 });
  },
};

follow();
