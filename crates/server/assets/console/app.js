// callvault console, core: the API client, the hash router, the page frame, a DOM builder that
// only ever sets text (never markup), translations and the confirm dialog.
//
// Access is decided by the API, under the user's own session cookie; the console only hides
// what a role cannot use. Views register themselves in views.js with CV.view(...).
'use strict';

const CV = (() => {
  const views = [];
  const state = { me: null, lang: 'en', notice: null, enroll: null };

  // ---- translations -------------------------------------------------------------------------
  function t(key, ...args) {
    const dict = I18N[state.lang] || I18N.en;
    let s = dict[key] ?? I18N.en[key] ?? key;
    args.forEach((a, i) => { s = s.replace(`{${i}}`, String(a)); });
    return s;
  }
  /** The signed-in person's choice (kept with their account), else this browser's last
   *  choice, else the browser's language. */
  function pickLang() {
    const stored = state.me?.language || localStorage.getItem('cv.lang');
    state.lang = stored || ((navigator.language || '').startsWith('sv') ? 'sv' : 'en');
    document.documentElement.lang = state.lang;
  }
  async function setLang(lang) {
    localStorage.setItem('cv.lang', lang);
    if (state.me) {
      await api('POST', '/api/v1/auth/language', { language: lang }).catch(() => {});
      state.me.language = lang;
    }
    pickLang();
    render();
  }

  // ---- DOM ----------------------------------------------------------------------------------
  /** Builds an element. Attributes starting with `on` become listeners; children are nodes or
   *  text (text is never parsed as markup). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function field(label, input) {
    const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
    input.id = id;
    return h('div', { class: 'field' }, h('label', { for: id }, label), input);
  }

  function announce(text) {
    const s = document.getElementById('status');
    s.textContent = '';
    s.textContent = text;
  }

  function errorBox(err) {
    return h('div', { class: 'error', role: 'alert' }, err.message || String(err));
  }

  // ---- API ----------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** A request under the session cookie. A 401 while signed in means the session ended: the
   *  user is sent to the sign-in page with a polite note, and the view sees a `signed_out`. */
  async function api(method, path, body) {
    const opts = { method, headers: { accept: 'application/json' }, credentials: 'same-origin' };
    if (body !== undefined) {
      opts.headers['content-type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    if (r.status === 204) return null;
    const json = (r.headers.get('content-type') || '').includes('json');
    const data = json ? await r.json() : null;
    if (r.ok) return data;
    const err = new ApiError(r.status, data?.error || 'error', data?.message || r.statusText);
    if (r.status === 401 && state.me) {
      state.me = null;
      state.notice = t(err.code === 'session_expired' ? 'session_expired' : 'signed_out_notice');
      go('login');
      err.code = 'signed_out';
    }
    throw err;
  }

  // ---- routing ------------------------------------------------------------------------------
  /** Registers a page. `path` like `recording/:id`; `roles` who may open it (absent: anyone
   *  signed in); `public` pages need no session; `nav` puts it in the menu. */
  function view(def) {
    views.push(def);
  }

  function go(path) {
    if (location.hash === `#/${path}`) render();
    else location.hash = `#/${path}`;
  }

  function match() {
    const raw = location.hash.replace(/^#\/?/, '');
    const [path, query] = raw.split('?');
    const parts = path.split('/').filter(Boolean);
    for (const v of views) {
      const want = v.path.split('/').filter(Boolean);
      if (want.length !== parts.length) continue;
      const args = {};
      const ok = want.every((seg, i) => {
        if (seg.startsWith(':')) {
          args[seg.slice(1)] = decodeURIComponent(parts[i]);
          return true;
        }
        return seg === parts[i];
      });
      if (ok) return { view: v, args, params: new URLSearchParams(query || '') };
    }
    return null;
  }

  /** The first page for a role. */
  function home() {
    const first = views.find((v) => v.nav && v.roles && v.roles.includes(state.me.role));
    return first ? first.path : 'login';
  }

  function frame(current) {
    const top = document.getElementById('top');
    const langSel = h('select', { id: 'lang', 'aria-label': t('language'), onchange: (e) => setLang(e.target.value) },
      h('option', { value: 'en', selected: state.lang === 'en' }, 'English'),
      h('option', { value: 'sv', selected: state.lang === 'sv' }, 'Svenska'));
    const items = state.me
      ? views.filter((v) => v.nav && (!v.roles || v.roles.includes(state.me.role)))
      : [];
    const parts = [
      h('span', { class: 'brand' }, 'callvault'),
      items.length
        ? h('nav', { 'aria-label': t('main_menu') }, h('ul', {}, items.map((v) =>
          h('li', {}, h('a', { href: `#/${v.path}`, 'aria-current': v === current ? 'page' : null }, t(v.title))))))
        : null,
      state.me ? h('span', { class: 'who' }, t('signed_in_as', state.me.actor.replace(/^user:/, ''), t(`role_${state.me.role}`))) : null,
      langSel,
      state.me ? h('button', { type: 'button', class: 'secondary', id: 'logout', onclick: logout }, t('sign_out')) : null,
    ];
    top.replaceChildren(...parts.filter(Boolean));
    document.getElementById('skip').textContent = t('skip');
  }

  async function logout() {
    try {
      await api('POST', '/api/v1/auth/logout');
    } catch (_) { /* already signed out */ }
    state.me = null;
    state.notice = t('signed_out_notice');
    go('login');
  }

  async function loadMe() {
    try {
      state.me = await api('GET', '/api/v1/auth/me');
    } catch (_) {
      state.me = null;
    }
    pickLang();
  }

  let rendering = 0;
  async function render() {
    const ticket = ++rendering;
    const main = document.getElementById('main');
    let m = match();
    if (!state.me && !(m && m.view.public)) {
      m = { view: views.find((v) => v.path === 'login'), args: {}, params: new URLSearchParams() };
    } else if (!m) {
      location.replace(`#/${state.me ? home() : 'login'}`);
      return;
    }
    frame(m.view);
    const heading = h('h1', { tabindex: '-1' }, t(m.view.title));
    main.replaceChildren(heading);
    document.title = `${t(m.view.title)} — callvault`;
    if (state.me && m.view.roles && !m.view.roles.includes(state.me.role)) {
      main.append(h('div', { class: 'error', role: 'alert', id: 'forbidden' }, t('forbidden_page')));
      heading.focus();
      return;
    }
    const body = h('div', {});
    main.append(body);
    try {
      await m.view.render(body, m.args, m.params);
    } catch (e) {
      if (e.code !== 'signed_out' && ticket === rendering) body.append(errorBox(e));
    }
    if (ticket === rendering) heading.focus();
  }

  // ---- confirm dialog -----------------------------------------------------------------------
  /** Asks before a change; resolves true only on an explicit yes (Escape cancels). */
  function confirmDialog(message) {
    return new Promise((resolve) => {
      const dlg = h('dialog', { 'aria-labelledby': 'confirm-msg', id: 'confirm' },
        h('p', { id: 'confirm-msg' }, message),
        h('div', { class: 'row' },
          h('button', { type: 'button', class: 'danger', id: 'confirm-yes', onclick: () => dlg.close('yes') }, t('confirm_yes')),
          h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close('no') }, t('cancel'))));
      dlg.addEventListener('close', () => {
        resolve(dlg.returnValue === 'yes');
        dlg.remove();
      });
      document.body.append(dlg);
      dlg.showModal();
    });
  }

  // ---- formatting ---------------------------------------------------------------------------
  const locale = () => (state.lang === 'sv' ? 'sv-SE' : 'en-GB');
  function when(iso) {
    return iso ? new Date(iso).toLocaleString(locale()) : '';
  }
  function duration(ms) {
    const s = Math.round(ms / 1000);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }

  async function boot() {
    pickLang();
    await loadMe();
    window.addEventListener('hashchange', render);
    render();
  }
  document.addEventListener('DOMContentLoaded', boot);

  return { state, t, h, field, api, view, go, home, render, loadMe, announce, errorBox, confirmDialog, when, duration };
})();
