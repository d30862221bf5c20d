// callvault console, pages. Each page is one CV.view({...}) entry; its `roles` hide it from
// roles the API would refuse anyway.
'use strict';

(() => {
  const { t, h, field, api, view, go, when, duration, confirmDialog, errorBox, announce } = CV;
  const LISTENERS = ['listener', 'privacy_officer'];
  const AUDITORS = ['auditor'];
  const ADMINS = ['admin'];
  const POLICY_EDITORS = ['admin', 'privacy_officer'];
  const PRIVACY_OFFICERS = ['privacy_officer'];
  const PURPOSES = ['clinical_followup', 'quality_review', 'complaint', 'subject_access', 'legal_request'];

  /** A form whose submit runs `action`; errors appear above the buttons, the button is busy
   *  while it runs. */
  function form(attrs, fields, submitLabel, action) {
    const errors = h('div', {});
    const submit = h('button', { type: 'submit' }, submitLabel);
    const f = h('form', { class: 'panel', ...attrs }, fields, errors,
      h('div', { class: 'row' }, submit));
    f.addEventListener('submit', async (e) => {
      e.preventDefault();
      errors.replaceChildren();
      submit.disabled = true;
      try {
        await action(new FormData(f));
      } catch (err) {
        if (err.code !== 'signed_out') errors.append(errorBox(err));
      } finally {
        submit.disabled = false;
      }
    });
    return f;
  }

  function input(name, attrs) {
    return h('input', { name, id: `f-${name}`, ...attrs });
  }

  function table(headers, rows, caption) {
    return h('div', { class: 'table-wrap' }, h('table', {},
      caption ? h('caption', { class: 'visually-hidden' }, caption) : null,
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rows)));
  }

  const val = (fd, k) => {
    const v = (fd.get(k) || '').toString().trim();
    return v === '' ? null : v;
  };
  /** A datetime-local value (the user's local time) as RFC 3339 UTC. */
  const isoFrom = (v) => (v ? new Date(v).toISOString().replace(/\.\d{3}Z$/, 'Z') : null);

  async function signedIn() {
    await CV.loadMe();
    go(CV.home());
  }

  function afterStep(step) {
    if (step.next === 'change_password') go('password');
    else if (step.next === 'enroll_totp') {
      CV.state.enroll = step.otpauth_uri;
      go('enroll');
    } else return signedIn();
    return null;
  }

  // ---- signing in ---------------------------------------------------------------------------
  view({
    path: 'login', title: 'sign_in', public: true,
    render(el) {
      if (CV.state.me) return go(CV.home());
      if (CV.state.notice) {
        el.append(h('p', { class: 'notice', id: 'notice' }, CV.state.notice));
        CV.state.notice = null;
      }
      el.append(h('div', { class: 'narrow' }, form({ id: 'login-form' }, [
        field(t('username'), input('username', { autocomplete: 'username', required: true })),
        field(t('password'), input('password', { type: 'password', autocomplete: 'current-password', required: true })),
        field(t('totp_code'), input('totp_code', { inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9 ]*' })),
        h('p', { class: 'muted' }, t('totp_hint')),
      ], t('sign_in'), async (fd) => {
        const step = await api('POST', '/api/v1/auth/login', {
          username: val(fd, 'username') || '', password: fd.get('password') || '', totp_code: val(fd, 'totp_code'),
        });
        await afterStep(step);
      })));
      return null;
    },
  });

  view({
    path: 'password', title: 'change_password', public: true,
    render(el) {
      el.append(h('p', {}, t('change_password_intro')), h('div', { class: 'narrow' }, form({ id: 'password-form' }, [
        field(t('current_password'), input('current_password', { type: 'password', autocomplete: 'current-password', required: true })),
        field(t('new_password'), input('new_password', { type: 'password', autocomplete: 'new-password', required: true, minlength: 12 })),
        field(t('repeat_password'), input('repeat_password', { type: 'password', autocomplete: 'new-password', required: true })),
      ], t('save'), async (fd) => {
        if (fd.get('new_password') !== fd.get('repeat_password')) throw new Error(t('passwords_differ'));
        const step = await api('POST', '/api/v1/auth/password', {
          current_password: fd.get('current_password'), new_password: fd.get('new_password'),
        });
        await afterStep(step);
      })));
    },
  });

  view({
    path: 'enroll', title: 'enroll_totp', public: true,
    render(el) {
      const secret = (CV.state.enroll || '').match(/[?&]secret=([A-Z2-7]+)/);
      el.append(
        h('p', {}, t('enroll_intro')),
        h('img', { class: 'qr', id: 'qr', src: '/api/v1/auth/totp/qr', alt: t('qr_alt'), width: 220, height: 220 }),
        secret ? h('p', {}, t('enroll_manual'), ' ', h('code', { class: 'secret', id: 'totp-secret' }, secret[1])) : null,
        h('div', { class: 'narrow' }, form({ id: 'enroll-form' }, [
          field(t('totp_code'), input('code', { inputmode: 'numeric', autocomplete: 'one-time-code', required: true })),
        ], t('confirm_code'), async (fd) => {
          const step = await api('POST', '/api/v1/auth/totp', { code: val(fd, 'code') || '' });
          CV.state.enroll = null;
          await afterStep(step);
        })));
    },
  });

  // ---- listening ----------------------------------------------------------------------------
  // The search criteria and page stay in memory only (never in storage: a caller number is data).
  const search = { criteria: null, cursors: [], page: null };

  async function runSearch(cursor) {
    const body = { ...search.criteria, limit: 25 };
    if (cursor) body.cursor = cursor;
    search.page = await api('POST', '/api/v1/recordings/search', body);
  }

  function resultsView(el) {
    const page = search.page;
    if (!page) return;
    const rows = page.items.map((r) => h('tr', {},
      h('td', {}, h('a', { href: `#/recording/${encodeURIComponent(r.id)}` }, when(r.started_at))),
      h('td', {}, duration(r.duration_ms)),
      h('td', {}, t(`dir_${r.direction}`)),
      h('td', {}, r.queue || ''),
      h('td', {}, r.agent_id || ''),
      h('td', {}, `${r.container} · ${r.codec} · ${r.channels === 2 ? t('stereo') : t('mono')}`)));
    const prev = h('button', { type: 'button', class: 'secondary', id: 'prev', disabled: search.cursors.length === 0 }, t('previous'));
    const next = h('button', { type: 'button', class: 'secondary', id: 'next', disabled: !page.next_cursor }, t('next'));
    prev.addEventListener('click', async () => {
      search.cursors.pop();
      await runSearch(search.cursors[search.cursors.length - 1]);
      CV.render();
    });
    next.addEventListener('click', async () => {
      search.cursors.push(page.next_cursor);
      await runSearch(page.next_cursor);
      CV.render();
    });
    el.append(h('section', { 'aria-labelledby': 'results-h', id: 'results' },
      h('h2', { id: 'results-h' }, t('results_page', search.cursors.length + 1, page.items.length)),
      page.items.length
        ? table([t('started'), t('duration'), t('direction'), t('queue'), t('agent'), t('format')], rows, t('results'))
        : h('p', {}, t('no_results')),
      h('div', { class: 'row' }, prev, next)));
  }

  view({
    path: 'search', title: 'search', nav: true, roles: LISTENERS,
    render(el) {
      const c = search.criteria || {};
      const local = (iso) => (iso ? new Date(new Date(iso).getTime() - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16) : null);
      el.append(form({ id: 'search-form', role: 'search' }, h('div', { class: 'grid' },
        field(t('from'), input('from', { type: 'datetime-local', value: local(c.from) })),
        field(t('to'), input('to', { type: 'datetime-local', value: local(c.to) })),
        field(t('queue'), input('queue', { value: c.queue })),
        field(t('agent'), input('agent_id', { value: c.agent_id })),
        field(t('caller_number'), input('caller_number', { type: 'tel', value: c.caller_number, autocomplete: 'off' }))),
      t('search'), async (fd) => {
        search.criteria = {
          from: isoFrom(val(fd, 'from')), to: isoFrom(val(fd, 'to')), queue: val(fd, 'queue'),
          agent_id: val(fd, 'agent_id'), caller_number: val(fd, 'caller_number'),
        };
        search.cursors = [];
        await runSearch(null);
        announce(t('results_page', 1, search.page.items.length));
        CV.render();
      }));
      resultsView(el);
      // A call in progress is not in the search index until it ends; it is opened by the id
      // the telephony system shows (the recorder's live call id).
      el.append(h('section', { 'aria-labelledby': 'live-h' },
        h('h2', { id: 'live-h' }, t('live_call')),
        h('p', {}, t('live_intro')),
        form({ id: 'live-form' }, field(t('call_id'), input('call_id', { required: true, autocomplete: 'off' })),
          t('follow_live'), async (fd) => go(`live/${encodeURIComponent(val(fd, 'call_id') || '')}`))));
    },
  });

  /** Channel labels: recorders send two-channel calls with the caller on channel 1 and the
   *  agent on channel 2 (docs/design/console.md). */
  function channelLabels(rec) {
    return rec.channels === 2
      ? h('p', { class: 'channels', id: 'channels' }, h('span', {}, t('channel_1')), h('span', {}, t('channel_2')))
      : h('p', { class: 'channels', id: 'channels' }, t('channel_mono'));
  }

  /** The player, under the grant. The waveform (drawn by the server from peaks stored at
   *  ingest; none for compressed formats) also seeks: a click jumps there. */
  function player(el, rec, grant, purposeCode) {
    const audio = h('audio', { controls: true, preload: 'metadata', id: 'player', src: grant.playback_url },
      t('no_audio_support'));
    const wave = h('img', {
      class: 'waveform', id: 'waveform', src: `${grant.playback_url}/waveform`, alt: t('waveform_alt'),
      onerror: () => wave.remove(),
      onclick: (e) => {
        if (!Number.isFinite(audio.duration)) return;
        const box = wave.getBoundingClientRect();
        // The lanes start 24 of 960 units in (svg.rs).
        const x = (e.clientX - box.left) / box.width;
        audio.currentTime = Math.max(0, Math.min(1, (x - 0.025) / 0.975)) * audio.duration;
      },
    });
    el.replaceChildren(
      h('p', { class: 'notice' }, t('listening_for', t(`purpose_${purposeCode}`), when(grant.expires_at))),
      channelLabels(rec),
      wave,
      audio);
    audio.focus();
  }

  /** The purpose statement that comes before any audio; `granted(grant, code)` gets the
   *  playback grant and replaces the form with a player. */
  function purposeSection(id, granted) {
    const listen = h('section', { 'aria-labelledby': 'listen-h', id: 'listen' });
    const options = PURPOSES.map((p) => h('option', { value: p }, t(`purpose_${p}`)));
    listen.append(
      h('h2', { id: 'listen-h' }, t('listen')),
      h('p', {}, t('purpose_intro')),
      form({ id: 'purpose-form' }, [
        field(t('purpose'), h('select', { name: 'purpose_code', id: 'f-purpose_code', required: true },
          h('option', { value: '' }, t('choose')), options)),
        field(t('purpose_text'), h('textarea', { name: 'purpose_text', id: 'f-purpose_text', required: true, minlength: 10, maxlength: 500 })),
      ], t('state_purpose'), async (fd) => {
        const code = val(fd, 'purpose_code');
        if (!code) throw new Error(t('choose_purpose'));
        const grant = await api('POST', `/api/v1/recordings/${encodeURIComponent(id)}/access`, {
          purpose_code: code, purpose_text: val(fd, 'purpose_text') || '',
        });
        const section = h('div', {});
        listen.querySelector('form').replaceWith(section);
        granted(section, grant, code);
      }));
    return listen;
  }

  view({
    path: 'recording/:id', title: 'recording', roles: LISTENERS,
    async render(el, { id }) {
      let rec;
      try {
        rec = await api('GET', `/api/v1/recordings/${encodeURIComponent(id)}`);
      } catch (e) {
        // Not stored (yet): it may be a call still in progress.
        if (e.status !== 404) throw e;
        el.append(errorBox(e), h('p', {}, h('a', { href: `#/live/${encodeURIComponent(id)}` }, t('maybe_live'))));
        return;
      }
      el.append(h('dl', { class: 'meta', id: 'rec-meta' },
        [
          [t('started'), when(rec.started_at)], [t('duration'), duration(rec.duration_ms)],
          [t('direction'), t(`dir_${rec.direction}`)], [t('caller_number'), rec.caller_number || '—'],
          [t('queue'), rec.queue || '—'], [t('agent'), rec.agent_id || '—'],
          [t('call_id'), rec.external_call_id || '—'],
          [t('format'), `${rec.container} · ${rec.codec} · ${rec.sample_rate} Hz · ${rec.channels === 2 ? t('stereo') : t('mono')}`],
        ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
      el.append(purposeSection(id, (section, grant, code) => player(section, rec, grant, code)),
        h('p', {}, h('a', { href: '#/search' }, t('back_to_results'))));
    },
  });

  /** A call in progress, under the grant: the server streams a WAV of everything acknowledged
   *  so far and then each new chunk (live/follow.rs), so a plain <audio> keeps following it.
   *  No ranges, hence no seeking and no waveform; when the call ends the stream ends. */
  function livePlayer(el, grant, purposeCode) {
    const heard = h('p', { id: 'live-heard' }, t('live_heard', duration(0)));
    const audio = h('audio', { controls: true, preload: 'auto', autoplay: true, id: 'player', src: grant.playback_url },
      t('no_audio_support'));
    audio.addEventListener('timeupdate', () => { heard.textContent = t('live_heard', duration(audio.currentTime * 1000)); });
    audio.addEventListener('ended', () => announce(t('live_ended')));
    el.replaceChildren(
      h('p', { class: 'notice' }, t('listening_for', t(`purpose_${purposeCode}`), when(grant.expires_at))),
      h('p', {}, t('live_following')),
      audio, heard);
    audio.focus();
    // Starting needs no second click: the purpose form's submit was the user's gesture.
    audio.play().catch(() => {});
  }

  view({
    path: 'live/:id', title: 'live_call', roles: LISTENERS,
    render(el, { id }) {
      el.append(h('p', {}, t('live_page_intro', id)),
        purposeSection(id, livePlayer),
        h('p', {}, h('a', { href: '#/search' }, t('back_to_results'))));
    },
  });

  // ---- auditing -----------------------------------------------------------------------------
  const ACTIONS = ['recording.search', 'recording.view', 'recording.access', 'recording.play', 'recording.waveform', 'recording.upload',
    'auth.login', 'auth.logout', 'access.denied', 'audit.query', 'audit.verify', 'audit.caller_report', 'charts.view'];

  function auditTable(entries) {
    return table([t('seq'), t('time'), t('actor'), t('action'), t('target'), t('purpose'), t('result'), t('client')],
      entries.map((e) => h('tr', { 'data-seq': e.seq },
        h('td', {}, e.seq), h('td', {}, when(e.time)), h('td', {}, e.actor), h('td', {}, e.action),
        h('td', {}, e.target && e.target.startsWith('rec_')
          ? h('a', { href: `#/audit/recording/${encodeURIComponent(e.target)}` }, e.target) : (e.target || '')),
        h('td', {}, e.purpose || ''), h('td', {}, e.result), h('td', {}, e.client || ''))),
      t('audit_record'));
  }

  view({
    path: 'audit', title: 'audit_record', nav: true, roles: AUDITORS,
    async render(el, _args, params) {
      const q = Object.fromEntries(['action', 'actor', 'target', 'tenant', 'after_seq'].map((k) => [k, params.get(k)]).filter(([, v]) => v));
      el.append(form({ id: 'audit-form', role: 'search' }, h('div', { class: 'grid' },
        field(t('action'), h('select', { name: 'action', id: 'f-action' }, h('option', { value: '' }, t('any')),
          ACTIONS.map((a) => h('option', { value: a, selected: q.action === a }, a)))),
        field(t('actor'), input('actor', { value: q.actor, placeholder: 'user:name' })),
        field(t('target'), input('target', { value: q.target })),
        CV.state.me.tenant ? null : field(t('tenant'), input('tenant', { value: q.tenant, placeholder: t('tenant_hint') }))),
      t('filter'), async (fd) => {
        const p = new URLSearchParams();
        for (const k of ['action', 'actor', 'target', 'tenant']) if (val(fd, k)) p.set(k, val(fd, k));
        go(`audit?${p}`);
      }));
      const entries = await api('GET', `/api/v1/audit?${new URLSearchParams({ ...q, limit: 100 })}`);
      el.append(entries.length ? auditTable(entries) : h('p', {}, t('no_entries')));
      if (entries.length === 100) {
        const p = new URLSearchParams({ ...q, after_seq: entries[entries.length - 1].seq });
        el.append(h('p', {}, h('a', { href: `#/audit?${p}`, id: 'audit-next' }, t('later_entries'))));
      }
    },
  });

  view({
    path: 'audit/recording/:id', title: 'access_report', roles: AUDITORS,
    async render(el, { id }) {
      const entries = await api('GET', `/api/v1/audit?${new URLSearchParams({ target: id, limit: 1000 })}`);
      const listened = entries.filter((e) => e.action === 'recording.play' && e.result === 'ok');
      const people = [...new Set(entries.filter((e) => e.action === 'recording.access').map((e) => e.actor))];
      el.append(
        h('p', {}, t('report_for', id)),
        h('p', { id: 'report-summary' }, t('report_summary', people.length, listened.length)),
        entries.length ? auditTable(entries) : h('p', {}, t('no_entries')));
    },
  });

  view({
    path: 'audit/caller', title: 'caller_report', nav: true, roles: AUDITORS,
    render(el) {
      // The number goes in a POST body and the result stays on this page only.
      const out = h('div', { id: 'caller-report' });
      el.append(h('p', {}, t('caller_report_intro')), form({ id: 'caller-form' }, h('div', { class: 'grid' },
        field(t('caller_number'), input('caller_number', { type: 'tel', required: true, autocomplete: 'off' })),
        field(t('tenant'), input('tenant', { placeholder: t('tenant_if_all') }))),
      t('show_report'), async (fd) => {
        const r = await api('POST', '/api/v1/audit/caller-report', { caller_number: val(fd, 'caller_number') || '', tenant: val(fd, 'tenant') });
        const listened = r.entries.filter((e) => e.action === 'recording.play' && e.result === 'ok').length;
        out.replaceChildren(
          h('p', { id: 'caller-summary' }, t('caller_summary', r.recordings.length, listened)),
          r.entries.length ? auditTable(r.entries) : h('p', {}, t('no_entries')));
      }), out);
    },
  });

  view({
    path: 'audit/verify', title: 'integrity', nav: true, roles: AUDITORS,
    async render(el) {
      const out = h('div', { id: 'verify-result', 'aria-live': 'polite' });
      const run = async () => {
        out.replaceChildren(h('p', {}, t('verifying')));
        const r = await api('POST', '/api/v1/audit/verify');
        out.replaceChildren(
          h('p', { class: r.intact ? 'ok' : 'bad', id: 'verify-status' }, r.intact ? t('chain_intact') : t('chain_broken')),
          h('dl', { class: 'meta' },
            h('dt', {}, t('entries')), h('dd', {}, r.intact ? r.entries : '—'),
            h('dt', {}, t('checkpoints')), h('dd', {}, r.intact ? r.checkpoints : '—'),
            h('dt', {}, t('last_checkpoint')), h('dd', { id: 'last-checkpoint' }, r.last_checkpoint_seq
              ? t('checkpoint_at', r.last_checkpoint_seq, when(r.last_checkpoint_time)) : t('none_yet')),
            r.finding ? [h('dt', {}, t('finding')), h('dd', {}, r.finding)] : null));
      };
      el.append(h('p', {}, t('verify_intro')), out,
        h('div', { class: 'row' }, h('button', { type: 'button', id: 'verify-again', onclick: () => run().catch((e) => out.replaceChildren(errorBox(e))) }, t('verify_again'))));
      await run();
    },
  });

  // ---- administration -----------------------------------------------------------------------
  /** Shows a secret once, with the instruction to pass it on now. */
  function shownOnce(label, secret) {
    return h('div', { class: 'notice', role: 'alert', id: 'shown-once' },
      h('p', {}, label), h('p', { class: 'secret' }, secret), h('p', {}, t('shown_once')));
  }

  /** Confirms, performs, and redraws the page with `after(result)` on top. */
  async function change(question, work, after) {
    if (!(await confirmDialog(question))) return;
    const result = await work();
    await CV.render();
    const main = document.querySelector('#main > div');
    if (after && main) main.prepend(after(result));
    announce(t('done'));
  }

  const yesNo = (b) => (b ? t('yes') : t('no'));
  const rowButton = (label, cls, onclick) => h('button', { type: 'button', class: cls, onclick: (e) => onclick().catch((err) => e.target.after(errorBox(err))) }, label);

  view({
    path: 'admin/users', title: 'users', nav: true, roles: ADMINS,
    async render(el) {
      el.append(form({ id: 'user-form' }, h('div', { class: 'grid' },
        field(t('username'), input('username', { required: true, autocomplete: 'off' })),
        field(t('role'), h('select', { name: 'role', id: 'f-role' },
          ['listener', 'privacy_officer', 'auditor', 'admin'].map((r) => h('option', { value: r }, t(`role_${r}`))))),
        field(t('tenant'), input('tenant', { placeholder: t('tenant_hint') }))),
      t('create_user'), async (fd) => {
        const body = { username: val(fd, 'username') || '', role: val(fd, 'role'), tenant: val(fd, 'tenant') };
        await change(t('confirm_create_user', body.username, t(`role_${body.role}`)),
          () => api('POST', '/api/v1/users', body),
          (r) => shownOnce(t('one_time_password_for', r.user.username), r.one_time_password));
      }));
      const users = await api('GET', '/api/v1/users');
      el.append(table([t('username'), t('role'), t('tenant'), t('totp'), t('locked'), t('disabled'), t('actions')],
        users.map((u) => h('tr', {},
          h('td', {}, u.username), h('td', {}, t(`role_${u.role}`)), h('td', {}, u.tenant || t('all_tenants')),
          h('td', {}, yesNo(u.totp_enrolled)), h('td', {}, yesNo(u.locked)), h('td', {}, yesNo(u.disabled)),
          h('td', {}, u.disabled ? '' : [
            rowButton(t('reset'), 'secondary', () => change(t('confirm_reset', u.username),
              () => api('POST', `/api/v1/users/${encodeURIComponent(u.id)}/reset`),
              (r) => shownOnce(t('one_time_password_for', u.username), r.one_time_password))),
            ' ',
            rowButton(t('disable'), 'danger', () => change(t('confirm_disable', u.username),
              () => api('DELETE', `/api/v1/users/${encodeURIComponent(u.id)}`))),
          ]))), t('users')));
    },
  });

  view({
    path: 'admin/tenants', title: 'tenants', nav: true, roles: ADMINS,
    async render(el) {
      el.append(form({ id: 'tenant-form' }, h('div', { class: 'grid' },
        field(t('tenant_id'), input('id', { required: true, pattern: '[a-z0-9-]+' })),
        field(t('name'), input('name', { required: true }))),
      t('create_tenant'), async (fd) => {
        const body = { id: val(fd, 'id') || '', name: val(fd, 'name') || '' };
        await change(t('confirm_create_tenant', body.id), () => api('POST', '/api/v1/tenants', body));
      }));
      const tenants = await api('GET', '/api/v1/tenants');
      el.append(table([t('tenant_id'), t('name'), t('created'), t('actions')],
        tenants.map((x) => h('tr', {}, h('td', {}, x.id), h('td', {}, x.name), h('td', {}, when(x.created_at)),
          h('td', {}, rowButton(t('rotate_key'), 'secondary', () => change(t('confirm_rotate', x.id),
            () => api('POST', `/api/v1/tenants/${encodeURIComponent(x.id)}/keys/rotate`),
            (r) => h('p', { class: 'notice' }, t('rotated', x.id, r.key_id))))))), t('tenants')));
    },
  });

  view({
    path: 'admin/tokens', title: 'tokens', nav: true, roles: ADMINS,
    async render(el) {
      el.append(form({ id: 'token-form' }, h('div', { class: 'grid' },
        field(t('name'), input('name', { required: true })),
        field(t('role'), h('select', { name: 'role', id: 'f-role' },
          ['recorder', 'auditor'].map((r) => h('option', { value: r }, t(`role_${r}`))))),
        field(t('tenant'), input('tenant', { placeholder: t('tenant_hint') })),
        field(t('expires_in_days'), input('expires_in_days', { type: 'number', min: 1, max: 366, value: 90, required: true }))),
      t('create_token'), async (fd) => {
        const body = { name: val(fd, 'name') || '', role: val(fd, 'role'), tenant: val(fd, 'tenant'), expires_in_days: Number(val(fd, 'expires_in_days')) };
        await change(t('confirm_create_token', body.name, t(`role_${body.role}`)),
          () => api('POST', '/api/v1/tokens', body),
          (r) => shownOnce(t('token_secret_for', r.token.name), r.secret));
      }));
      const tokens = await api('GET', '/api/v1/tokens');
      el.append(table([t('name'), t('role'), t('tenant'), t('created_by'), t('expires'), t('revoked'), t('actions')],
        tokens.map((x) => h('tr', {}, h('td', {}, x.name), h('td', {}, t(`role_${x.role}`)), h('td', {}, x.tenant || t('all_tenants')),
          h('td', {}, x.created_by), h('td', {}, when(x.expires_at)), h('td', {}, yesNo(x.revoked)),
          h('td', {}, x.revoked ? '' : rowButton(t('revoke'), 'danger', () => change(t('confirm_revoke', x.name),
            () => api('DELETE', `/api/v1/tokens/${encodeURIComponent(x.id)}`)))))), t('tokens')));
    },
  });

  view({
    path: 'admin/posture', title: 'posture', nav: true, roles: ADMINS,
    async render(el) {
      const findings = await api('GET', '/api/v1/posture');
      el.append(findings.length
        ? table([t('severity'), t('finding'), t('fix')], findings.map((f) => h('tr', {},
          h('td', { class: `sev-${f.severity}` }, f.severity), h('td', {}, h('strong', {}, f.id), ' — ', f.explanation), h('td', {}, f.fix))), t('posture'))
        : h('p', { class: 'ok', id: 'posture-clean' }, t('no_findings')));
    },
  });

  // ---- recording policies, retention, legal holds (issue 6) ---------------------------------
  /** Which tenant's policies this page shows: an account of one tenant sees its own; an
   *  operator-wide admin picks one (the first, until they choose). */
  async function policyTenant(el, params) {
    if (CV.state.me.tenant) return CV.state.me.tenant;
    const tenants = await api('GET', '/api/v1/tenants');
    if (!tenants.length) {
      el.append(h('p', {}, t('no_tenants')));
      return null;
    }
    const chosen = tenants.some((x) => x.id === params.get('tenant')) ? params.get('tenant') : tenants[0].id;
    el.append(form({ id: 'policy-tenant-form' }, field(t('tenant'), h('select', { name: 'tenant', id: 'f-policy-tenant' },
      tenants.map((x) => h('option', { value: x.id, selected: x.id === chosen }, `${x.id} — ${x.name}`)))),
    t('show'), async (fd) => go(`admin/policies?${new URLSearchParams({ tenant: val(fd, 'tenant') })}`)));
    return chosen;
  }

  view({
    path: 'admin/policies', title: 'policies', nav: true, roles: POLICY_EDITORS,
    async render(el, _args, params) {
      const tenant = await policyTenant(el, params);
      if (!tenant) return;
      const base = `/api/v1/tenants/${encodeURIComponent(tenant)}`;
      const [policies, rules] = await Promise.all([api('GET', `${base}/recording-policies`), api('GET', `${base}/retention-rules`)]);

      el.append(h('section', { 'aria-labelledby': 'policies-h' },
        h('h2', { id: 'policies-h' }, t('recording_policies', tenant)),
        h('p', { class: 'muted' }, t('policies_intro')),
        policies.length
          ? table([t('queue'), t('record'), t('parties'), t('retention_class'), t('updated_by'), t('updated')],
            policies.map((x) => h('tr', {}, h('td', {}, x.queue || t('tenant_default')), h('td', {}, yesNo(x.record)),
              h('td', {}, t(`parties_${x.parties}`)), h('td', {}, x.retention_class), h('td', {}, x.updated_by), h('td', {}, when(x.updated_at)))),
            t('recording_policies', tenant))
          : h('p', { class: 'bad', id: 'no-policy' }, t('no_policy')),
        form({ id: 'policy-form' }, h('div', { class: 'grid' },
          field(t('queue'), input('policy_queue', { placeholder: t('queue_hint') })),
          field(t('record'), h('select', { name: 'record', id: 'f-record' },
            h('option', { value: 'true' }, t('yes')), h('option', { value: 'false' }, t('no')))),
          field(t('parties'), h('select', { name: 'parties', id: 'f-parties' },
            ['both', 'caller', 'agent'].map((x) => h('option', { value: x }, t(`parties_${x}`))))),
          field(t('retention_class'), input('retention_class', { required: true, value: 'standard' }))),
        t('set_policy'), async (fd) => {
          const body = { queue: val(fd, 'policy_queue'), record: fd.get('record') === 'true', parties: val(fd, 'parties'), retention_class: val(fd, 'retention_class') || '' };
          await change(t('confirm_policy', body.queue || t('tenant_default'), tenant, body.record ? t('policy_records', t(`parties_${body.parties}`)) : t('policy_refuses')),
            () => api('POST', `${base}/recording-policies`, body));
        })));

      el.append(h('section', { 'aria-labelledby': 'rules-h' },
        h('h2', { id: 'rules-h' }, t('retention_rules', tenant)),
        h('p', { class: 'muted' }, t('rules_intro')),
        rules.length
          ? h('div', { id: 'retention-rules' }, table([t('scope'), t('applies_to'), t('days'), t('updated_by'), t('updated')],
            rules.map((x) => h('tr', {}, h('td', {}, t(`scope_${x.scope}`)), h('td', {}, x.value || t('every_recording')), h('td', {}, x.days),
              h('td', {}, x.updated_by), h('td', {}, when(x.updated_at)))), t('retention_rules', tenant)))
          : h('p', { id: 'retention-rules' }, t('no_rules')),
        form({ id: 'retention-form' }, h('div', { class: 'grid' },
          field(t('scope'), h('select', { name: 'scope', id: 'f-scope' },
            ['tenant', 'queue', 'class'].map((x) => h('option', { value: x }, t(`scope_${x}`))))),
          field(t('applies_to'), input('value', { placeholder: t('value_hint') })),
          field(t('days'), input('days', { type: 'number', min: 1, max: 36500, required: true }))),
        t('set_rule'), async (fd) => {
          const scope = val(fd, 'scope');
          const body = { scope, value: scope === 'tenant' ? null : val(fd, 'value'), days: Number(val(fd, 'days')) };
          await change(t('confirm_rule', tenant, body.value ? `${t(`scope_${scope}`)} ${body.value}` : t('every_recording'), body.days),
            () => api('POST', `${base}/retention-rules`, body));
        })));
    },
  });

  view({
    path: 'privacy/holds', title: 'holds', nav: true, roles: PRIVACY_OFFICERS,
    async render(el) {
      el.append(h('p', { class: 'muted' }, t('holds_intro')), form({ id: 'hold-form' }, h('div', { class: 'grid' },
        field(t('recording_id'), input('recording_id', { autocomplete: 'off' })),
        field(t('caller_number'), input('caller_number', { type: 'tel', autocomplete: 'off' })),
        field(t('reason'), input('reason', { required: true, minlength: 10 }))),
      t('place_hold'), async (fd) => {
        const body = { recording_id: val(fd, 'recording_id'), caller_number: val(fd, 'caller_number'), reason: val(fd, 'reason') || '' };
        if (!body.recording_id === !body.caller_number) throw new Error(t('hold_one_of'));
        await change(t('confirm_hold', body.recording_id || t('hold_kind_caller')), () => api('POST', '/api/v1/holds', body));
      }));
      const holds = await api('GET', '/api/v1/holds');
      const what = (x) => (x.kind === 'recording' ? x.recording_id
        : x.kind === 'caller' ? t('hold_kind_caller')
          : [x.queue, x.agent_id, x.from && when(x.from), x.to && when(x.to)].filter(Boolean).join(' · '));
      el.append(holds.length
        ? table([t('hold_what'), t('reason'), t('created_by'), t('created'), t('until'), t('lifted'), t('actions')],
          holds.map((x) => h('tr', {}, h('td', {}, what(x)), h('td', {}, x.reason), h('td', {}, x.created_by), h('td', {}, when(x.created_at)),
            h('td', {}, x.until ? when(x.until) : '—'), h('td', {}, x.lifted_at ? `${when(x.lifted_at)} (${x.lifted_by})` : t('no')),
            h('td', {}, x.lifted_at ? '' : rowButton(t('lift'), 'danger', () => change(t('confirm_lift', what(x)),
              () => api('POST', `/api/v1/holds/${encodeURIComponent(x.id)}/lift`)))))), t('holds'))
        : h('p', {}, t('no_holds')));
    },
  });

  // ---- charts (admins and auditors) ---------------------------------------------------------
  view({
    path: 'charts', title: 'charts', nav: true, roles: [...AUDITORS, ...ADMINS],
    render(el) {
      const chart = (name, title, legend) => h('figure', { id: `chart-${name}` },
        h('figcaption', {}, h('h2', {}, title)),
        h('img', { class: 'chart', src: `/api/v1/charts/${name}`, alt: title }),
        legend ? h('p', { class: 'legend' }, legend.map((l, i) => h('span', {}, h('span', { class: `swatch swatch-${i + 1}`, 'aria-hidden': 'true' }), l))) : null);
      el.append(
        h('p', { class: 'muted' }, t('charts_intro')),
        chart('calls-per-day', t('chart_calls')),
        chart('storage', t('chart_storage')),
        chart('accesses-per-role', t('chart_accesses'), [t('role_listener'), t('role_privacy_officer')]));
    },
  });
})();
