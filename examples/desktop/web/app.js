// PeerSync desktop UI: a client of the engine's HTTP API (/rest/...).
//
// Rules this file keeps: every value that comes from the API or the user is
// put into the page as text (textContent, text nodes, setAttribute on
// harmless attributes), never as HTML; every request carries the API key in
// the X-API-Key header, which is also the CSRF defence (a form or a link on
// another site cannot set a custom header); live updates come from
// /rest/events read with fetch() streaming, because EventSource cannot send
// that header and the key does not belong in a URL.
'use strict';

(() => {
  const KEY = document.querySelector('meta[name="peersync-key"]').content;
  const DEFAULT_PARENT = document.querySelector('meta[name="peersync-home-hint"]').content;
  const DEFAULT_PORT = '44996';
  const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
  const PAGES = ['status', 'send', 'receive', 'schedule', 'history', 'settings'];

  const st = {
    page: 'status',
    status: null, // last /rest/status
    lastEvent: 0, // id of the last event seen, to resume the stream
    sendFolders: [], // [{id, dir}] of the Send form
    editing: null, // DeviceID whose entry the Send form edits
    histFolder: '',
  };

  // ---------- helpers ----------

  const $ = (id) => document.getElementById(id);

  // pick reads a field whatever its JSON spelling (Go's "Head", a tag's
  // "head", "id" for ID).
  function pick(o, ...names) {
    if (o == null) return undefined;
    for (const n of names) {
      for (const k of [n, n[0].toLowerCase() + n.slice(1), n[0].toUpperCase() + n.slice(1), n.toLowerCase()]) {
        if (o[k] !== undefined && o[k] !== null) return o[k];
      }
    }
    return undefined;
  }

  // el builds an element; children that are not Nodes become text nodes.
  function el(tag, props, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') n.className = v;
      else if (k === 'text') n.textContent = v;
      else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
      else if (k === 'value') n.value = v;
      else if (k === 'checked') n.checked = !!v;
      else n.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of kids.flat(Infinity)) {
      if (c == null || c === false) continue;
      n.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return n;
  }

  function fill(parent, ...kids) {
    // A list the user is typing into is left alone until the next action.
    if (parent.dataset.dirty) return;
    parent.replaceChildren(...kids.flat(Infinity).filter((k) => k != null && k !== false));
  }

  class ApiError extends Error {
    constructor(status, msg) {
      super(msg);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const opts = { method, headers: { 'X-API-Key': KEY }, cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const r = await fetch('/rest' + path, opts);
    const text = await r.text();
    let data = text;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      /* not JSON: keep the text */
    }
    if (!r.ok) throw new ApiError(r.status, (data && data.error) || text || r.statusText);
    return data;
  }

  // fileText fetches a file's bytes at a revision as text (null if binary).
  async function fileText(folder, rev, path) {
    const q = new URLSearchParams({ rev, path });
    const r = await fetch(`/rest/folders/${enc(folder)}/file?${q}`, { headers: { 'X-API-Key': KEY } });
    if (!r.ok) throw new ApiError(r.status, (await r.text()) || r.statusText);
    const buf = new Uint8Array(await r.arrayBuffer());
    if (buf.subarray(0, 8000).includes(0)) return { binary: true, size: buf.length };
    return { text: new TextDecoder().decode(buf), size: buf.length };
  }

  const enc = encodeURIComponent;

  // history reads a folder's changes (the API wraps them: {"changes":[...]}).
  async function history(folder, params) {
    const h = await api('GET', `/folders/${enc(folder)}/history?${new URLSearchParams(params)}`);
    return (Array.isArray(h) ? h : pick(h, 'Changes')) || [];
  }

  let toastTimer = 0;
  function toast(msg, bad) {
    const t = $('toast');
    t.textContent = msg;
    t.className = bad ? 'bad' : '';
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (t.hidden = true), bad ? 7000 : 3500);
  }

  // act runs an action of a button: disables it meanwhile, reports errors.
  async function act(btn, fn, done) {
    if (btn) btn.disabled = true;
    try {
      await fn();
      for (const d of document.querySelectorAll('[data-dirty]')) delete d.dataset.dirty;
      if (done) toast(done);
      refreshSoon(0);
    } catch (e) {
      toast(e.message || String(e), true);
    } finally {
      if (btn) btn.disabled = false;
    }
  }

  // confirmButton: a button that asks for a second click before acting.
  function confirmButton(label, ask, fn, done) {
    const b = el('button', { type: 'button', class: 'danger small', text: label });
    let armed = false;
    b.addEventListener('click', () => {
      if (!armed) {
        armed = true;
        b.textContent = ask;
        setTimeout(() => {
          armed = false;
          b.textContent = label;
        }, 4000);
        return;
      }
      act(b, fn, done);
    });
    return b;
  }

  function button(label, fn, done, cls) {
    const b = el('button', { type: 'button', class: cls || 'ghost small', text: label });
    b.addEventListener('click', () => act(b, fn, done));
    return b;
  }

  function pill(text, cls) {
    return el('span', { class: 'pill ' + (cls || ''), text });
  }

  function when(t) {
    if (!t) return '';
    const d = new Date(t);
    if (isNaN(d) || d.getFullYear() < 2000) return '';
    const s = (Date.now() - d.getTime()) / 1000;
    if (s < 60) return 'just now';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return d.toLocaleString();
  }

  function bytes(n) {
    n = Number(n) || 0;
    const u = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1000 && i < u.length - 1) {
      n /= 1000;
      i++;
    }
    return (i ? n.toFixed(1) : n) + ' ' + u[i];
  }

  function duration(ns) {
    let s = Math.round((Number(ns) || 0) / 1e9);
    if (s <= 0) return '';
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.round(s / 60) + ' min';
    return (s / 3600).toFixed(1) + ' h';
  }

  function shortID(d) {
    return String(d || '').slice(0, 7);
  }

  function peers() {
    return (st.status && pick(st.status, 'Peers')) || [];
  }
  function folders() {
    return (st.status && pick(st.status, 'Folders')) || [];
  }
  function peerName(d) {
    if (!d) return 'this device';
    if (st.status && d === pick(st.status, 'Device')) return 'this device';
    const p = peers().find((p) => pick(p, 'Device') === d);
    return (p && pick(p, 'Name')) || shortID(d);
  }
  function folderLabel(f) {
    return pick(f, 'Label') || pick(f, 'ID') || '';
  }
  function folderByID(id) {
    return folders().find((f) => pick(f, 'ID') === id);
  }

  // thead is a table's header row; null names are left out.
  function thead(names) {
    return el('thead', {}, el('tr', {}, names.filter((h) => h != null).map((h) => el('th', { text: h }))));
  }

  function emptyRow(text) {
    return el('p', { class: 'empty', text });
  }

  // ---------- device IDs and keys, checked as typed ----------

  const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

  function luhn32(s) {
    let factor = 2;
    let sum = 0;
    for (let i = s.length - 1; i >= 0; i--) {
      const addend = factor * B32.indexOf(s[i]);
      factor = 3 - factor;
      sum += Math.floor(addend / 32) + (addend % 32);
    }
    return B32[(32 - (sum % 32)) % 32];
  }

  function b32(bytes) {
    let out = '';
    let bits = 0;
    let v = 0;
    for (const b of bytes) {
      v = (v << 8) | b;
      bits += 8;
      while (bits >= 5) {
        out += B32[(v >>> (bits - 5)) & 31];
        bits -= 5;
      }
    }
    if (bits > 0) out += B32[(v << (5 - bits)) & 31];
    return out;
  }

  function deviceIDFromKey(key) {
    const data = b32(key);
    let s = '';
    for (let g = 0; g < 4; g++) {
      const chunk = data.slice(g * 13, g * 13 + 13);
      s += chunk + luhn32(chunk);
    }
    return s.match(/.{7}/g).join('-');
  }

  // parseKey reads a DeviceID or an ssh-ed25519 line the way the engine
  // does (crypto.ParsePeer): {id} or {error}.
  function parseKey(text) {
    text = text.trim();
    if (!text) return { error: '' };
    if (text.startsWith('ssh-')) {
      const f = text.split(/\s+/);
      if (f[0] !== 'ssh-ed25519') return { error: 'Only ssh-ed25519 keys are device keys.' };
      if (!f[1]) return { error: 'The key line is cut short: copy the whole line.' };
      let raw;
      try {
        raw = Uint8Array.from(atob(f[1]), (c) => c.charCodeAt(0));
      } catch (_) {
        return { error: 'The key is not valid base64: copy the whole line.' };
      }
      const dv = new DataView(raw.buffer);
      const n1 = raw.length >= 4 ? dv.getUint32(0) : 0;
      const kind = new TextDecoder().decode(raw.subarray(4, 4 + n1));
      const n2 = raw.length >= 8 + n1 ? dv.getUint32(4 + n1) : 0;
      if (kind !== 'ssh-ed25519' || n2 !== 32 || raw.length !== 8 + n1 + 32) {
        return { error: 'The key line is damaged or cut short: copy the whole line.' };
      }
      return { id: deviceIDFromKey(raw.subarray(8 + n1)) };
    }
    const clean = text
      .replace(/[- ]/g, '')
      .toUpperCase()
      .replace(/0/g, 'O')
      .replace(/1/g, 'I')
      .replace(/8/g, 'B');
    for (const c of clean) {
      if (!B32.includes(c)) return { error: `"${c}" cannot be part of a Device ID.` };
    }
    if (clean.length !== 56) {
      return { error: `A Device ID has 56 characters without dashes; this has ${clean.length}.` };
    }
    for (let g = 0; g < 4; g++) {
      const chunk = clean.slice(g * 14, g * 14 + 14);
      if (luhn32(chunk.slice(0, 13)) !== chunk[13]) {
        return { error: `Check character of group ${g + 1} does not match: a typo around characters ${g * 14 + 1}–${g * 14 + 14}.` };
      }
    }
    return { id: clean.match(/.{7}/g).join('-') };
  }

  // normAddr gives "host:port" (default port added) or throws.
  function normAddr(a) {
    a = a.trim();
    if (!a) return '';
    let m = a.match(/^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/);
    if (m) return `[${m[1]}]:${m[2] || DEFAULT_PORT}`;
    if ((a.match(/:/g) || []).length > 1) return `[${a}]:${DEFAULT_PORT}`; // bare IPv6
    m = a.match(/^([A-Za-z0-9.-]+)(?::(\d+))?$/);
    if (!m || (m[2] && (+m[2] < 1 || +m[2] > 65535))) {
      throw new Error('The address should look like 192.168.1.20, home.example.net or home.example.net:44996.');
    }
    return `${m[1]}:${m[2] || DEFAULT_PORT}`;
  }

  // ---------- routing and refresh ----------

  function route() {
    const p = (location.hash.match(/^#\/(\w+)/) || [])[1];
    st.page = PAGES.includes(p) ? p : 'status';
    for (const d of document.querySelectorAll('[data-dirty]')) delete d.dataset.dirty;
    for (const name of PAGES) $('page-' + name).hidden = name !== st.page;
    for (const a of document.querySelectorAll('.sidebar a')) {
      a.classList.toggle('active', a.dataset.page === st.page);
    }
    refreshSoon(0);
  }

  let refreshTimer = 0;
  let refreshing = false;
  let again = false;
  function refreshSoon(ms) {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, ms == null ? 250 : ms);
  }

  async function refresh() {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    try {
      st.status = await api('GET', '/status');
      $('banner').hidden = true;
      renderNav();
      await LOADERS[st.page]();
      document.body.dataset.ready = st.page; // tests wait for this
      if (!document.body.dataset.firstDataMs) document.body.dataset.firstDataMs = String(Math.round(performance.now()));
    } catch (e) {
      const b = $('banner');
      b.textContent =
        e.status === 401
          ? 'This page has no valid key: open PeerSync again from the address the program printed.'
          : 'Cannot reach PeerSync: ' + (e.message || e) + '. Is the program still running?';
      b.hidden = false;
    } finally {
      refreshing = false;
      if (again) {
        again = false;
        refreshSoon();
      }
    }
  }

  async function renderNav() {
    $('nav-device').textContent = pick(st.status, 'Name') || '';
    const p = pick(st.status, 'Pending') || (await api('GET', '/pending').catch(() => null));
    const n = ((p && pick(p, 'Devices')) || []).length + ((p && pick(p, 'Folders')) || []).length;
    const badge = $('nav-pending');
    badge.textContent = String(n);
    badge.hidden = n === 0;
  }

  // ---------- live events ----------

  function setLive(on, text) {
    $('live').classList.toggle('on', on);
    $('live-text').textContent = text;
  }

  function onEvent(block) {
    let id = 0;
    for (const line of block.split('\n')) {
      if (line.startsWith('id:')) id = parseInt(line.slice(3).trim(), 10) || id;
    }
    if (id > st.lastEvent) st.lastEvent = id;
    refreshSoon();
  }

  async function stream() {
    let wait = 1000;
    for (;;) {
      try {
        const r = await fetch('/rest/events?since=' + st.lastEvent, {
          headers: { 'X-API-Key': KEY, Accept: 'text/event-stream' },
          cache: 'no-store',
        });
        if (!r.ok || !r.body) throw new ApiError(r.status, r.statusText);
        setLive(true, 'live');
        wait = 1000;
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            onEvent(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch (_) {
        /* retried below */
      }
      setLive(false, 'updating every 5 s');
      refreshSoon(0);
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, 5000);
    }
  }

  // ---------- Status ----------

  async function recentChanges(limit) {
    const lists = await Promise.all(
      folders().map((f) => {
        const id = pick(f, 'ID');
        return history(id, { limit: String(limit) })
          .then((l) => l.map((c) => ({ folder: id, c })))
          .catch(() => []);
      }),
    );
    return lists.flat().sort((a, b) => new Date(pick(b.c, 'Time')) - new Date(pick(a.c, 'Time')));
  }

  function folderState(f) {
    const stopped = pick(f, 'Stopped');
    if (pick(f, 'Paused')) return pill('Paused', 'warn');
    if (stopped) return el('span', {}, pill('Stopped', 'bad'), ' ', el('span', { class: 'sub', text: stopped }));
    const scan = pick(f, 'Scan');
    if (scan) return pill(`Scanning: ${pick(scan, 'Files') || 0} files`, 'busy');
    const fetches = (pick(f, 'Fetches') || []).filter((x) => pick(x, 'State') && pick(x, 'State') !== 'failed');
    if (fetches.length) return pill('Receiving', 'busy');
    const notSent = pick(f, 'NotSent') || 0;
    if (notSent > 0) return pill(`${notSent} local change${notSent > 1 ? 's' : ''} not sent`, 'warn');
    if (!pick(f, 'Head') || /^0+$/.test(pick(f, 'Head'))) return pill('Empty', '');
    return pill('Up to date', 'ok');
  }

  function progressView(p) {
    const total = pick(p, 'Total') || 0;
    const done = pick(p, 'Bytes') || 0;
    const pct = total > 0 ? Math.min(100, Math.round((done / total) * 100)) : 0;
    const dir = pick(p, 'Direction') === 'send' ? 'Sending' : 'Receiving';
    const bar = el('div', { class: 'bar' }, el('span', {}));
    bar.firstChild.style.width = pct + '%';
    const parts = [`${dir} ${pick(p, 'Folder') || ''}`, total ? `${pct}%` : bytes(done)];
    if (pick(p, 'Rate')) parts.push(bytes(pick(p, 'Rate')) + '/s');
    const eta = duration(pick(p, 'ETA'));
    if (eta) parts.push(eta + ' left');
    return el('div', { class: 'progress' }, el('div', { class: 'sub', text: parts.join(' · ') }), bar);
  }

  async function loadStatus() {
    const fs = folders();
    const ps = peers();
    const online = ps.filter((p) => pick(p, 'Connected')).length;
    $('status-summary').textContent = !fs.length
      ? 'No folders yet: add one below.'
      : `${fs.length} folder${fs.length > 1 ? 's' : ''} · ${online} of ${ps.length} device${ps.length === 1 ? '' : 's'} online`;

    const recent = await recentChanges(10);
    const last = {};
    for (const r of recent) if (!last[r.folder]) last[r.folder] = r.c;

    fill(
      $('status-folders'),
      fs.length
        ? el(
            'table',
            { class: 'stack', id: 'folders-table' },
            thead(['Folder', 'State', 'Last change', '']),
            el(
              'tbody',
              {},
              fs.map((f) => {
                const id = pick(f, 'ID');
                const lc = last[id];
                const paused = pick(f, 'Paused');
                return el(
                  'tr',
                  { 'data-folder': id },
                  el('td', {}, el('div', { class: 'name', text: folderLabel(f) }), el('div', { class: 'sub', text: pick(f, 'Path') })),
                  el('td', {}, folderState(f)),
                  el('td', {}, lc ? [el('div', { text: pick(lc, 'Path') }), el('div', { class: 'sub', text: `${pick(lc, 'Action')} · ${when(pick(lc, 'Time'))}` })] : '—'),
                  el(
                    'td',
                    { class: 'actions' },
                    button(paused ? 'Resume' : 'Pause', () => api('POST', `/folders/${enc(id)}/${paused ? 'resume' : 'pause'}`)),
                    button('Scan now', () => api('POST', `/folders/${enc(id)}/scan`), 'Scanned'),
                    (pick(f, 'NotSent') || 0) > 0
                      ? confirmButton('Undo local changes', 'Really undo them?', () => api('POST', `/folders/${enc(id)}/revert`), 'Back to what the senders have')
                      : null,
                    confirmButton('Remove', 'Stop sharing?', () => api('DELETE', `/folders/${enc(id)}`), 'Folder removed; its files stay on disk'),
                  ),
                );
              }),
            ),
          )
        : emptyRow('No folders yet. "+ Add a folder" shares one; the Receive page shows folders others offer you.'),
    );

    fill(
      $('status-peers'),
      ps.length
        ? el(
            'table',
            { class: 'stack', id: 'peers-table' },
            thead(['Device', 'Connection', 'Schedule', '']),
            el(
              'tbody',
              {},
              ps.map((p) => {
                const on = pick(p, 'Connected');
                const waiting = pick(p, 'Waiting') || 0;
                return el(
                  'tr',
                  { 'data-peer': pick(p, 'Device') },
                  el('td', {}, el('div', { class: 'name', text: pick(p, 'Name') || shortID(pick(p, 'Device')) }), el('div', { class: 'sub', text: (pick(p, 'Folders') || []).join(', ') || 'no folders' })),
                  el(
                    'td',
                    {},
                    on ? pill('Online', 'ok') : pill(pick(p, 'Paused') ? 'Paused' : 'Offline', ''),
                    on && pick(p, 'Path') ? el('span', { class: 'sub', text: ' ' + pick(p, 'Path') }) : null,
                    (pick(p, 'Progress') || []).map(progressView),
                  ),
                  el('td', {}, el('div', { text: pick(p, 'Window') || 'always' }), waiting ? el('div', { class: 'sub', text: `${waiting} change${waiting > 1 ? 's' : ''} waiting` }) : null),
                  el(
                    'td',
                    { class: 'actions' },
                    button(pick(p, 'Paused') ? 'Resume' : 'Pause', () => api('POST', `/peers/${enc(pick(p, 'Device'))}/${pick(p, 'Paused') ? 'resume' : 'pause'}`)),
                  ),
                );
              }),
            ),
          )
        : emptyRow('No devices yet. Add one on the Send page, or accept one on the Receive page.'),
    );

    fill($('status-changes'), recent.length ? changesTable(recent.slice(0, 15), true) : emptyRow('Nothing has changed yet.'));
  }

  function changesTable(rows, withFolder) {
    return el(
      'table',
      { class: 'stack changes' },
      thead([withFolder ? 'Folder' : null, 'What', 'Who', 'When']),
      el(
        'tbody',
        {},
        rows.map(({ folder, c }) =>
          el(
            'tr',
            {},
            withFolder ? el('td', { text: folderLabel(folderByID(folder) || { ID: folder }) }) : null,
            el('td', {}, pill(pick(c, 'Action'), pick(c, 'Action') === 'delete' ? 'bad' : ''), ' ', el('span', { class: 'file-name', text: pick(c, 'Path') })),
            el('td', { text: who(c) }),
            el('td', { class: 'num', text: when(pick(c, 'Time')) }),
          ),
        ),
      ),
    );
  }

  function who(c) {
    const from = pick(c, 'From');
    if (from) return peerName(from);
    const author = String(pick(c, 'Author') || '').replace(/\s*<.*$/, '');
    return author || 'this device';
  }

  function setupStatus() {
    $('folder-add-toggle').addEventListener('click', () => {
      $('folder-add').hidden = !$('folder-add').hidden;
    });
    $('folder-add').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const f = ev.target;
      const label = f.label.value.trim();
      const id =
        f.id.value.trim() ||
        label
          .toLowerCase()
          .replace(/[^a-z0-9._-]+/g, '-')
          .replace(/^-+|-+$/g, '')
          .slice(0, 64);
      if (!id) return toast('Give the folder a name or an ID.', true);
      const path = f.path.value.trim() || DEFAULT_PARENT + '/' + (label || id).replace(/[/\\]/g, '-');
      act(f.querySelector('button'), async () => {
        await api('POST', '/folders', { id, path, label: label || id });
        f.reset();
        f.hidden = true;
      }, 'Folder added');
    });
  }

  // ---------- Send ----------

  function checkKey() {
    const ta = $('send-form').key;
    const r = parseKey(ta.value);
    const msg = $('send-key-msg');
    ta.classList.toggle('invalid', !!r.error);
    ta.classList.toggle('valid', !!r.id);
    msg.className = 'field-msg ' + (r.error ? 'bad' : r.id ? 'ok' : '');
    msg.textContent = r.error || (r.id ? 'Device ' + r.id : '');
    return r;
  }

  function renderSendFolders() {
    const dirText = { both: 'both ways', send: 'only send', receive: 'only receive' };
    fill(
      $('send-folders'),
      st.sendFolders.length
        ? st.sendFolders.map((sf, i) =>
            el(
              'li',
              { 'data-folder': sf.id },
              el('span', { text: `${folderLabel(folderByID(sf.id) || { ID: sf.id })} (${dirText[sf.dir] || sf.dir})` }),
              el('button', {
                type: 'button',
                title: 'Take this folder away',
                'aria-label': 'Take this folder away',
                text: '−',
                onclick: () => {
                  st.sendFolders.splice(i, 1);
                  renderSendFolders();
                },
              }),
            ),
          )
        : el('li', { class: 'empty-chip', text: 'none yet: pick a folder and press +' }),
    );
    const pickSel = $('send-folder-pick');
    const chosen = new Set(st.sendFolders.map((s) => s.id));
    const keep = pickSel.value;
    fill(
      pickSel,
      folders()
        .filter((f) => !chosen.has(pick(f, 'ID')))
        .map((f) => el('option', { value: pick(f, 'ID'), text: folderLabel(f) })),
    );
    if ([...pickSel.options].some((o) => o.value === keep)) pickSel.value = keep;
    $('send-folder-plus').disabled = pickSel.options.length === 0;
  }

  function resetSend() {
    const f = $('send-form');
    f.reset();
    st.sendFolders = [];
    st.editing = null;
    f.key.readOnly = false;
    $('send-title').textContent = 'Add a recipient';
    $('send-save').textContent = 'Add recipient';
    $('send-cancel').hidden = true;
    checkKey();
    renderSendFolders();
  }

  function editPeer(p) {
    const f = $('send-form');
    st.editing = pick(p, 'Device');
    f.name.value = pick(p, 'Name') || '';
    f.addr.value = (pick(p, 'Addrs') || [])[0] || '';
    f.key.value = st.editing;
    f.key.readOnly = true;
    const dirs = pick(p, 'Directions') || {};
    st.sendFolders = (pick(p, 'Folders') || []).map((id) => ({ id, dir: dirs[id] || 'both' }));
    $('send-title').textContent = 'Edit ' + (pick(p, 'Name') || shortID(st.editing));
    $('send-save').textContent = 'Save changes';
    $('send-cancel').hidden = false;
    checkKey();
    renderSendFolders();
    f.scrollIntoView({ behavior: 'smooth' });
  }

  function peersTable(ps, withEdit) {
    return el(
      'table',
      { class: 'stack' },
      thead(['Name', 'Address', 'Folders', 'Key', '']),
      el(
        'tbody',
        {},
        ps.map((p) => {
          const d = pick(p, 'Device');
          return el(
            'tr',
            { 'data-peer': d },
            el('td', { class: 'name', text: pick(p, 'Name') || shortID(d) }),
            el('td', { text: (pick(p, 'Addrs') || []).join(', ') || 'found automatically' }),
            el('td', { text: (pick(p, 'Folders') || []).map((id) => folderLabel(folderByID(id) || { ID: id })).join(', ') || '—' }),
            el('td', {}, el('code', { title: d, text: shortID(d) })),
            el(
              'td',
              { class: 'actions' },
              withEdit ? button('Edit', async () => editPeer(p)) : null,
              confirmButton('Delete', 'Really delete?', () => api('DELETE', `/peers/${enc(d)}`), 'Removed'),
            ),
          );
        }),
      ),
    );
  }

  async function loadSend() {
    renderSendFolders();
    const ps = peers();
    fill($('send-peers'), ps.length ? peersTable(ps, true) : emptyRow('No recipients yet.'));
  }

  function setupSend() {
    const f = $('send-form');
    f.key.addEventListener('input', checkKey);
    $('send-folder-plus').addEventListener('click', () => {
      const id = $('send-folder-pick').value;
      if (!id) return;
      st.sendFolders.push({ id, dir: $('send-folder-dir').value });
      renderSendFolders();
    });
    $('send-cancel').addEventListener('click', resetSend);
    f.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const k = checkKey();
      if (!k.id) return toast(k.error || 'Paste the key of the device (its Settings page shows it).', true);
      let addr;
      try {
        addr = normAddr(f.addr.value);
      } catch (e) {
        return toast(e.message, true);
      }
      act($('send-save'), async () => {
        const old = (await api('GET', '/peers').catch(() => [])) || [];
        const prev = old.find((p) => pick(p, 'Device') === k.id) || {};
        // PUT replaces the whole entry: keep what this form does not show.
        const body = { device: k.id, name: f.name.value.trim(), addrs: addr ? [addr] : [], folders: st.sendFolders.map((s) => s.id) };
        for (const key of ['paused', 'schedule', 'limits']) if (prev[key] !== undefined) body[key] = prev[key];
        const directions = {};
        for (const sf of st.sendFolders) if (sf.dir !== 'both') directions[sf.id] = sf.dir;
        if (Object.keys(directions).length) body.directions = directions;
        await api('PUT', `/peers/${enc(k.id)}`, body);
        resetSend();
      }, st.editing ? 'Saved' : 'Recipient added');
    });
  }

  // ---------- Receive ----------

  async function loadReceive() {
    const p = (await api('GET', '/pending')) || {};
    const devs = pick(p, 'Devices') || [];
    const offers = pick(p, 'Folders') || [];
    const rows = [];
    for (const d of devs) {
      const id = pick(d, 'Device');
      const name = pick(d, 'Name') || shortID(id);
      rows.push(
        el(
          'div',
          { class: 'pending', 'data-pending-device': id },
          el('div', { class: 'what' }, el('div', { class: 'name', text: `${name} wants to connect` }), el('div', { class: 'sub', text: `${pick(d, 'Addr') || ''} · ${id}` })),
          el(
            'div',
            { class: 'actions' },
            button('Accept', () => api('POST', `/pending/devices/${enc(id)}/accept`, { folders: [] }), 'Accepted: folders they offer will show here', 'small'),
            button('Ignore', () => api('DELETE', `/pending/devices/${enc(id)}`), 'Ignored'),
          ),
        ),
      );
    }
    for (const o of offers) {
      const id = pick(o, 'ID');
      const from = pick(o, 'From');
      const label = pick(o, 'Label') || id;
      const where = el('input', { 'aria-label': 'Where to put it', placeholder: DEFAULT_PARENT + '/' + label.replace(/[/\\]/g, '-') });
      rows.push(
        el(
          'div',
          { class: 'pending', 'data-offer': id },
          el('div', { class: 'what' }, el('div', { class: 'name', text: `${peerName(from)} offers the folder "${label}"` }), el('div', { class: 'sub', text: `folder ID ${id}` })),
          el('label', {}, 'Put it in', where),
          el(
            'div',
            { class: 'actions' },
            button('Accept', () => api('POST', `/pending/folders/${enc(id)}/accept`, { path: where.value.trim(), from }), 'Folder added', 'small'),
            button('Ignore', () => api('DELETE', `/pending/folders/${enc(id)}?from=${enc(from)}`), 'Ignored'),
          ),
        ),
      );
    }
    fill($('recv-pending'), rows.length ? rows : emptyRow('Nobody is waiting. When a device adds you on its Send page, it shows up here.'));
    const ps = peers();
    fill($('recv-peers'), ps.length ? peersTable(ps, false) : emptyRow('You accept no senders yet.'));
  }

  // ---------- Schedule ----------

  function dayBoxes(container, days) {
    fill(
      container,
      DAYS.map((d) => el('label', {}, el('input', { type: 'checkbox', value: d, checked: (days || []).includes(d) }), d[0].toUpperCase() + d.slice(1))),
    );
  }

  function readDays(container) {
    return [...container.querySelectorAll('input:checked')].map((i) => i.value);
  }

  async function loadSchedule() {
    const g = (await api('GET', '/schedule').catch(() => null)) || {};
    const w = pick(g, 'Window');
    const form = $('sched-global');
    if (!form.dataset.touched) {
      form.always.checked = !w;
      form.classList.toggle('always', !w);
      form.from.value = (w && pick(w, 'From')) || '22:00';
      form.to.value = (w && pick(w, 'To')) || '06:00';
      dayBoxes(form.querySelector('.days'), (w && pick(w, 'Days')) || []);
    }
    const list = (await api('GET', '/peers').catch(() => null)) || peers();
    const status = Object.fromEntries(peers().map((p) => [pick(p, 'Device'), p]));
    fill(
      $('sched-peers'),
      list.length
        ? el(
            'table',
            { class: 'stack' },
            thead(['Device', 'From', 'To', 'Days', 'Now', '']),
            el(
              'tbody',
              {},
              list.map((p) => {
                const d = pick(p, 'Device');
                const pw = pick(p, 'Schedule');
                const from = el('input', { type: 'time', value: (pw && pick(pw, 'From')) || '', 'aria-label': 'From' });
                const to = el('input', { type: 'time', value: (pw && pick(pw, 'To')) || '', 'aria-label': 'To' });
                const days = el('div', { class: 'days' });
                dayBoxes(days, (pw && pick(pw, 'Days')) || []);
                return el(
                  'tr',
                  { 'data-peer': d },
                  el('td', { class: 'name', text: pick(p, 'Name') || shortID(d) }),
                  el('td', {}, from),
                  el('td', {}, to),
                  el('td', {}, days),
                  el('td', { text: pick(status[d], 'Window') || '' }),
                  el(
                    'td',
                    { class: 'actions' },
                    button('Save', () => {
                      const win = from.value && to.value ? { days: readDays(days), from: from.value, to: to.value } : null;
                      return api('PUT', `/peers/${enc(d)}/schedule`, { window: win });
                    }, 'Saved'),
                    button('Sync now', () => api('POST', '/sync-now', { peer: d, folder: '' }), 'Syncing now'),
                  ),
                );
              }),
            ),
          )
        : emptyRow('A row appears here for every device you add on the Send page.'),
    );
  }

  function setupSchedule() {
    const form = $('sched-global');
    form.addEventListener('input', () => {
      form.dataset.touched = '1';
      form.classList.toggle('always', form.always.checked);
    });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const win = form.always.checked ? null : { days: readDays(form.querySelector('.days')), from: form.from.value, to: form.to.value };
      act(form.querySelector('button[type=submit]'), async () => {
        await api('PUT', '/schedule', { window: win });
        delete form.dataset.touched;
      }, 'Schedule saved');
    });
    $('sync-now-all').addEventListener('click', (ev) => act(ev.target, () => api('POST', '/sync-now', { peer: '', folder: '' }), 'Syncing now'));
  }

  // ---------- History ----------

  const CONFLICT = /\.sync-conflict-\d{8}-\d{6}-[A-Z2-7]{7}/;

  async function loadHistory() {
    const sel = $('hist-folder');
    const fs = folders();
    const keep = st.histFolder || sel.value;
    fill(sel, fs.map((f) => el('option', { value: pick(f, 'ID'), text: folderLabel(f) })));
    if (fs.some((f) => pick(f, 'ID') === keep)) sel.value = keep;
    st.histFolder = sel.value;
    if (!st.histFolder) return fill($('hist-list'), emptyRow('No folders yet.'));
    const path = $('hist-path').value.trim();
    const q = new URLSearchParams({ limit: '200' });
    if (path) q.set('path', path);
    const [list] = await Promise.all([history(st.histFolder, q), loadConflicts(st.histFolder)]);
    $('hist-title').textContent = path ? `Versions of ${path}, newest first` : 'Changes, newest first';
    fill(
      $('hist-list'),
      list.length
        ? el(
            'table',
            { class: 'stack changes', id: 'hist-table' },
            thead(['What', 'Who', 'When', '']),
            el('tbody', {}, list.map((c, i) => historyRow(c, path ? list.slice(i + 1) : null))),
          )
        : emptyRow(path ? 'No versions of this file.' : 'Nothing has changed in this folder yet.'),
    );
  }

  // loadConflicts lists the folder's conflict copies, each with its two
  // sides (who made it, when) and "Keep this one" on each: the kept content
  // ends at the original path and the copy is deleted, as commits that sync.
  async function loadConflicts(folder) {
    const res = await api('GET', `/folders/${enc(folder)}/conflicts`).catch(() => null);
    const cs = (res && pick(res, 'Conflicts')) || [];
    $('hist-conflicts').hidden = !cs.length;
    fill(
      $('hist-conflict-list'),
      cs.map((c) => {
        const copy = pick(c, 'Copy');
        const orig = pick(c, 'Original');
        const side = (label, keep, path, sd) => {
          const ch = pick(sd, 'Change') || {};
          const exists = pick(sd, 'Exists');
          return el(
            'tr',
            { 'data-keep': keep },
            el('td', {}, pill(label, keep === 'copy' ? 'warn' : ''), ' ', el('span', { class: 'file', text: path })),
            el('td', { text: exists ? who(ch) : '(deleted)' }),
            el('td', { class: 'num', text: exists ? when(pick(ch, 'Time')) : '' }),
            el(
              'td',
              { class: 'actions' },
              exists ? button('View', () => showFile(folder, '', path)) : null,
              exists || keep === 'copy'
                ? button('Keep this one', () => api('POST', `/folders/${enc(folder)}/conflicts/resolve`, { copy, keep }), 'Kept; the copy is removed', 'small')
                : null,
            ),
          );
        };
        return el(
          'table',
          { class: 'stack changes conflict', 'data-copy': copy },
          thead([`Conflict in ${orig}`, 'Who', 'When', '']),
          el('tbody', {}, side('original', 'original', orig, pick(c, 'OriginalSide')), side('conflict copy', 'copy', copy, pick(c, 'CopySide'))),
        );
      }),
    );
  }

  // historyRow is one change; older (for a file's versions) are the
  // versions before it, to diff against and to undelete from.
  function historyRow(c, older) {
    const folder = st.histFolder;
    const path = pick(c, 'Path');
    const rev = pick(c, 'Commit');
    const action = pick(c, 'Action');
    const link = el('a', { class: 'file', text: path, title: 'All versions of this file' });
    link.addEventListener('click', () => {
      $('hist-path').value = path;
      refreshSoon(0);
    });
    const acts = [];
    if (action === 'delete') {
      acts.push(
        button('Undelete', async () => {
          const versions = older || (await history(folder, { path, limit: '200' }));
          const i = versions.findIndex((v) => pick(v, 'Commit') === rev);
          const before = versions.slice(i + 1).find((v) => pick(v, 'Action') !== 'delete');
          if (!before) throw new Error('No earlier version of this file to bring back.');
          await api('POST', `/folders/${enc(folder)}/restore`, { path, rev: pick(before, 'Commit') });
        }, 'File is back', 'small'),
      );
    } else {
      acts.push(button('View', () => showFile(folder, rev, path)));
      if (older) {
        const prev = older.find((v) => pick(v, 'Action') !== 'delete');
        if (prev && action === 'modify') acts.push(button('Changes', () => showDiff(folder, pick(prev, 'Commit'), rev, path)));
        acts.push(button('Restore this version', () => api('POST', `/folders/${enc(folder)}/restore`, { path, rev }), 'Restored', 'small'));
      }
    }
    return el(
      'tr',
      { 'data-rev': rev, 'data-path': path },
      el('td', {}, pill(action, action === 'delete' ? 'bad' : ''), ' ', link, CONFLICT.test(path) ? [' ', pill('conflict copy', 'warn')] : null),
      el('td', { text: who(c) }),
      el('td', { class: 'num', text: when(pick(c, 'Time')) }),
      el('td', { class: 'actions' }, acts),
    );
  }

  async function showFile(folder, rev, path) {
    const f = await fileText(folder, rev, path);
    $('hist-view-title').textContent = `${path} at ${String(rev).slice(0, 8) || 'now'}`;
    $('hist-view-body').textContent = f.binary ? `(a binary file of ${bytes(f.size)})` : f.text;
    $('hist-view').hidden = false;
    $('hist-view').scrollIntoView({ behavior: 'smooth' });
  }

  async function showDiff(folder, oldRev, newRev, path) {
    const [a, b] = await Promise.all([fileText(folder, oldRev, path), fileText(folder, newRev, path)]);
    $('hist-view-title').textContent = `Changes in ${path}`;
    const body = $('hist-view-body');
    if (a.binary || b.binary) {
      body.textContent = `(binary: ${bytes(a.size)} → ${bytes(b.size)})`;
    } else {
      fill(body, lineDiff(a.text.split('\n'), b.text.split('\n')));
    }
    $('hist-view').hidden = false;
    $('hist-view').scrollIntoView({ behavior: 'smooth' });
  }

  // lineDiff: the lines of a longest-common-subsequence diff, as spans.
  function lineDiff(a, b) {
    if (a.length * b.length > 4e6) return [el('span', { text: '(too large to compare here)' })];
    const n = a.length;
    const m = b.length;
    const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    }
    const out = [];
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[i] === b[j]) {
        out.push(el('span', { text: '  ' + a[i] + '\n' }));
        i++;
        j++;
      } else if (j < m && (i >= n || L[i][j + 1] >= L[i + 1][j])) {
        out.push(el('span', { class: 'add', text: '+ ' + b[j++] }));
      } else {
        out.push(el('span', { class: 'del', text: '− ' + a[i++] }));
      }
    }
    return out;
  }

  function setupHistory() {
    $('hist-folder').addEventListener('change', (ev) => {
      st.histFolder = ev.target.value;
      $('hist-path').value = '';
      refreshSoon(0);
    });
    $('hist-path').addEventListener('change', () => refreshSoon(0));
    $('hist-all').addEventListener('click', () => {
      $('hist-path').value = '';
      refreshSoon(0);
    });
    $('hist-view-close').addEventListener('click', () => ($('hist-view').hidden = true));
  }

  // ---------- Settings ----------

  async function loadSettings() {
    const d = (await api('GET', '/device')) || {};
    const form = $('set-name');
    if (!form.dataset.touched) form.name.value = pick(d, 'Name') || '';
    $('set-id').textContent = pick(d, 'Device') || '';
    $('set-pubkey').textContent = pick(d, 'PubKey') || '';
    if (!$('set-qr').getAttribute('src')) $('set-qr').setAttribute('src', '/qr.png');
    const lim = await api('GET', '/limits').catch(() => null);
    const lf = $('set-limits');
    if (lim && !lf.dataset.touched) {
      lf.up.value = Math.round((pick(lim, 'Up') || 0) / 1024);
      lf.down.value = Math.round((pick(lim, 'Down') || 0) / 1024);
    }
    lf.hidden = !lim;
    const rv = pick(st.status, 'Rendezvous');
    const facts = [
      ['Listening on', pick(st.status, 'Addr') || 'not running'],
      ['LAN discovery', pick(st.status, 'Discovery') ? 'on' : 'off'],
      ['Rendezvous', rv ? `${pick(rv, 'Addr')} · ${pick(rv, 'Registered') ? 'registered, seen as ' + pick(rv, 'Observed') : 'not registered'}` : 'none'],
    ];
    fill($('set-net'), facts.map(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
    const ns = await settingsCall('GET', '/rest/settings').catch(() => null);
    if (ns) showNetSettings(ns);
    const lan = await settingsCall('GET', '/desktop/lanview').catch(() => null);
    $('set-lan-card').hidden = !lan;
    if (lan) showLANView(lan);
  }

  // settingsCall is api() for the settings' routes (/rest/settings and the
  // desktop's /desktop/...): a 400 names the field, shown beside it.
  async function settingsCall(method, path, body) {
    const opts = { method, headers: { 'X-API-Key': KEY }, cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    const data = await r.json().catch(() => null);
    if (!r.ok) {
      const e = new ApiError(r.status, (data && data.error) || r.statusText);
      e.field = data && data.field;
      throw e;
    }
    return data;
  }

  // fieldErrors shows err beside its field in form (or clears them all).
  function fieldErrors(card, err) {
    for (const n of card.querySelectorAll('.field-error')) {
      n.hidden = true;
      n.textContent = '';
    }
    for (const n of card.querySelectorAll('.invalid')) n.classList.remove('invalid');
    if (!err) return;
    const box = err.field && card.querySelector(`.field-error[data-field="${err.field}"]`);
    if (!box) throw err; // no field: the toast says it
    box.textContent = err.message;
    box.hidden = false;
    const input = card.querySelector(`[name="${err.field}"]`);
    if (input) input.classList.add('invalid');
  }

  function turnRow(t) {
    const row = el('div', { class: 'turn-row' },
      el('label', {}, 'Relay HOST:PORT', el('input', { name: 'turn-addr', value: pick(t, 'addr') || '', autocomplete: 'off' })),
      el('label', {}, 'User', el('input', { name: 'turn-user', value: pick(t, 'user') || '', autocomplete: 'off' })),
      el('label', {}, 'Password', el('input', { name: 'turn-pass', type: 'password', autocomplete: 'new-password',
        placeholder: pick(t, 'hasPass') ? 'saved (type to change)' : '' })));
    row.append(el('button', { type: 'button', class: 'danger small', text: 'Remove', onclick: () => row.remove() }));
    return row;
  }

  function showNetSettings(ns) {
    const f = $('set-net-form');
    // A restart that failed (the port was taken) leaves the engine stopped:
    // the button stays, to try again with another address.
    const stopped = st.status && !pick(st.status, 'Addr');
    $('set-restart').hidden = !pick(ns, 'restartNeeded') && !stopped;
    $('set-restart-why').textContent = stopped ? 'The engine is not running.' : 'The new listen address applies after a restart of the engine.';
    if (f.dataset.touched) return;
    f.listenAddr.value = pick(ns, 'listenAddr') || '';
    f.discovery.checked = !!pick(ns, 'discovery');
    f.rendezvousAddr.value = pick(ns, 'rendezvousAddr') || '';
    f.rendezvousDevice.value = pick(ns, 'rendezvousDevice') || '';
    f.stun.value = (pick(ns, 'stun') || []).join('\n');
    $('set-turn').replaceChildren(...(pick(ns, 'turn') || []).map(turnRow));
  }

  function showLANView(lan) {
    const f = $('set-lan');
    if (!f.dataset.touched) {
      f.enabled.checked = !!lan.enabled;
      f.addr.value = lan.addr || '';
    }
    $('set-lan-url').textContent = lan.url ? 'Serving at ' + lan.url : 'Off';
    const users = lan.users || [];
    if ($('set-lan-users').dataset.dirty) return;
    fill($('set-lan-users'), users.length ? users.map((name) => {
      const pass = el('input', { type: 'password', autocomplete: 'new-password', placeholder: 'new password', 'aria-label': 'New password for ' + name });
      return el('li', {},
        el('span', { class: 'name', text: name }), pass,
        el('button', { type: 'button', class: 'ghost small', text: 'Change password', onclick: (ev) => act(ev.target, async () => {
          try {
            await settingsCall('PUT', `/desktop/lanview/users/${enc(name)}`, { password: pass.value });
            fieldErrors($('set-lan-card'));
          } catch (e) {
            fieldErrors($('set-lan-card'), e);
            throw e;
          }
        }, 'Password changed') }),
        el('button', { type: 'button', class: 'danger small', text: 'Remove', onclick: (ev) => act(ev.target, () => settingsCall('DELETE', `/desktop/lanview/users/${enc(name)}`), 'Account removed') }));
    }) : el('li', { class: 'empty', text: 'No accounts yet: add one below.' }));
  }

  // saveForm runs save for a settings form: errors go beside their field.
  function saveForm(form, card, save, done) {
    form.addEventListener('input', () => (form.dataset.touched = '1'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(form.querySelector('button[type="submit"]'), async () => {
        try {
          await save();
          fieldErrors(card);
          delete form.dataset.touched;
        } catch (e) {
          fieldErrors(card, e);
          throw e;
        }
      }, done);
    });
  }

  function setupNetSettings() {
    const f = $('set-net-form');
    const card = f.closest('.card');
    $('set-turn-add').addEventListener('click', () => {
      f.dataset.touched = '1';
      $('set-turn').append(turnRow({}));
    });
    saveForm(f, card, async () => {
      const turn = [...$('set-turn').querySelectorAll('.turn-row')].map((r) => {
        const t = { addr: r.querySelector('[name="turn-addr"]').value.trim(), user: r.querySelector('[name="turn-user"]').value.trim() };
        const p = r.querySelector('[name="turn-pass"]').value;
        if (p) t.pass = p;
        return t;
      });
      const ns = await settingsCall('PUT', '/rest/settings', {
        listenAddr: f.listenAddr.value.trim(),
        discovery: f.discovery.checked,
        rendezvousAddr: f.rendezvousAddr.value.trim(),
        rendezvousDevice: f.rendezvousDevice.value.trim(),
        stun: f.stun.value.split('\n').map((x) => x.trim()).filter(Boolean),
        turn,
      });
      delete f.dataset.touched;
      showNetSettings(ns);
    }, 'Network settings saved');
    $('set-restart-btn').addEventListener('click', (ev) => act(ev.target, async () => {
      try {
        await settingsCall('POST', '/desktop/restart');
        fieldErrors(card);
      } catch (e) {
        e.field = 'restart';
        fieldErrors(card, e);
        throw e;
      }
    }, 'Engine restarted'));
    const lf = $('set-lan');
    const lanCard = $('set-lan-card');
    saveForm(lf, lanCard, async () => {
      showLANView(await settingsCall('PUT', '/desktop/lanview', { enabled: lf.enabled.checked, addr: lf.addr.value.trim() }));
    }, 'Phone view saved');
    const af = $('set-lan-add');
    saveForm(af, lanCard, async () => {
      showLANView(await settingsCall('PUT', `/desktop/lanview/users/${enc(af.name.value.trim())}`, { password: af.password.value }));
      af.reset();
    }, 'Account saved');
    $('set-lan-users').addEventListener('input', () => ($('set-lan-users').dataset.dirty = '1'));
  }

  function setupSettings() {
    const nf = $('set-name');
    nf.addEventListener('input', () => (nf.dataset.touched = '1'));
    nf.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(nf.querySelector('button'), async () => {
        await api('PATCH', '/device', { name: nf.name.value.trim() });
        delete nf.dataset.touched;
      }, 'Name saved');
    });
    const lf = $('set-limits');
    lf.addEventListener('input', () => (lf.dataset.touched = '1'));
    lf.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(lf.querySelector('button'), async () => {
        await api('PUT', '/limits', { up: Math.max(0, +lf.up.value || 0) * 1024, down: Math.max(0, +lf.down.value || 0) * 1024 });
        delete lf.dataset.touched;
      }, 'Limits saved');
    });
    for (const b of document.querySelectorAll('button.copy')) {
      b.addEventListener('click', async () => {
        const text = $(b.dataset.copy).textContent;
        try {
          await navigator.clipboard.writeText(text);
          toast('Copied');
        } catch (_) {
          const r = document.createRange();
          r.selectNodeContents($(b.dataset.copy));
          getSelection().removeAllRanges();
          getSelection().addRange(r);
          toast('Selected: press Ctrl+C to copy');
        }
      });
    }
  }

  const LOADERS = {
    status: loadStatus,
    send: loadSend,
    receive: loadReceive,
    schedule: loadSchedule,
    history: loadHistory,
    settings: loadSettings,
  };

  for (const id of ['recv-pending', 'sched-peers']) {
    $(id).addEventListener('input', () => ($(id).dataset.dirty = '1'));
  }
  setupStatus();
  setupSend();
  setupSchedule();
  setupHistory();
  setupSettings();
  setupNetSettings();
  resetSend();
  window.addEventListener('hashchange', route);
  route();
  stream();
  setInterval(() => refreshSoon(0), 5000); // besides the events: progress, times
})();
