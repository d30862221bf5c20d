// Drives the web console in headless Chromium through every role's main pages. Started by
// crates/callvault/tests/console.rs, which boots the server and passes accounts through the
// environment: CV_BASE, CV_CHROMIUM, CV_SHOTS, CV_RECORDING, CV_LIVE (a call the Rust side keeps
// streaming in real time), and CV_NURSE / CV_AUDITOR / CV_ADMIN / CV_PRIVACY =
// user:password:base32-totp. Every check throws on failure (non-zero exit).
import assert from 'node:assert/strict';
import { BASE, WAIT, account, env, log, run, session, shot, signIn, totp } from './lib.mjs';

const REC = env('CV_RECORDING');
const LIVE = env('CV_LIVE');

await run(async (state) => {
  let page;
  // ---- the CSP forbids inline script, and the console still works under it -----------------
  const nurse = await session('nurse');
  page = nurse.page;
  state.page = page;
  const shell = await page.goto(`${BASE}/console`);
  const csp = shell.headers()['content-security-policy'];
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  await page.waitForSelector('#login-form', WAIT);
  const inlineRan = await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.inlineRan = true';
    document.body.append(s);
    return window.inlineRan === true;
  });
  assert.equal(inlineRan, false, 'an inline script ran despite the CSP');
  page.problems = page.problems.filter((p) => !p.includes('Content Security Policy'));
  const keys = await page.evaluate(() => [Object.keys(I18N.en).sort(), Object.keys(I18N.sv).sort()]);
  assert.deepEqual(keys[1], keys[0], 'Swedish and English strings differ in keys');
  await shot(page, '01-sign-in');
  log('CSP forbids inline script; sign-in page drawn');

  // ---- listener: sign in with TOTP, search, open, purpose, play, seek --------------------------
  const creds = account('CV_NURSE');
  await page.fill('#f-username', creds.user);
  await page.fill('#f-password', creds.password);
  await page.fill('#f-totp_code', '000000');
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#login-form [role=alert]', WAIT);
  await signIn(page, creds);
  await page.waitForSelector('#search-form', WAIT);
  log('listener signed in with password and TOTP');

  await page.fill('#f-queue', 'child-health');
  await page.click('#search-form button[type=submit]');
  await page.waitForSelector('#results tbody tr', WAIT);
  const rows = () => page.locator('#results tbody tr').count();
  assert.equal(await rows(), 25);
  await page.click('#next');
  await page.waitForFunction(() => document.querySelectorAll('#results tbody tr').length === 2, null, WAIT);
  await page.click('#prev');
  await page.waitForFunction(() => document.querySelectorAll('#results tbody tr').length === 25, null, WAIT);
  log('27 calls in the queue: page 1 has 25, page 2 has 2, and back');
  await page.fill('#f-caller_number', '+46 70-123 45 67');
  await page.click('#search-form button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('#results tbody tr').length === 1, null, WAIT);
  await shot(page, '02-search');
  log('search by queue and caller number found the call');

  await page.click('#results tbody tr a');
  await page.waitForSelector('#purpose-form', WAIT);
  assert.equal(await page.locator('audio').count(), 0, 'audio offered before a purpose was stated');
  assert.match(await page.textContent('#rec-meta'), /\+46701234567/);
  await shot(page, '03-recording-purpose');
  await page.selectOption('#f-purpose_code', 'quality_review');
  await page.fill('#f-purpose_text', 'weekly quality review of the advice given');
  await page.click('#purpose-form button[type=submit]');
  await page.waitForSelector('#player', WAIT);
  assert.match(await page.textContent('#channels'), /Channel 1.*caller/);
  // The waveform (peaks stored at ingest), under the same grant: two labelled lanes.
  await page.waitForFunction(() => document.getElementById('waveform')?.naturalWidth > 0, null, WAIT);

  // Seek before playing, while only the start of the file is loaded: the audio at 110 s is not
  // buffered yet, so Chromium must ask the server for a range from there.
  const played = await page.evaluate(async () => {
    const a = document.getElementById('player');
    if (a.readyState < 1) await new Promise((r) => a.addEventListener('loadedmetadata', r, { once: true }));
    const seeked = new Promise((r) => a.addEventListener('seeked', r, { once: true }));
    a.currentTime = 110;
    await seeked;
    await a.play();
    const start = performance.now();
    while (a.currentTime < 111 && performance.now() - start < 15000) await new Promise((r) => setTimeout(r, 50));
    return { t: a.currentTime, duration: a.duration };
  });
  assert.ok(played.t >= 111, `audio did not advance after seeking to 110 s: ${JSON.stringify(played)}`);
  assert.ok(Math.abs(played.duration - 120) < 0.5, `duration ${played.duration}`);
  const resumed = page.partial.filter((start) => start > 0);
  assert.ok(resumed.length > 0, `no ranged request after the start was answered with 206: ${page.ranges}`);
  log(`seeked to 110 s and played to ${played.t.toFixed(2)} s of ${played.duration} s; range requests: ${page.ranges.join(', ')}`);
  // A click on the waveform's first third seeks there, and playback goes on from there.
  const box = await page.locator('#waveform').boundingBox();
  await page.mouse.click(box.x + box.width * 0.3, box.y + box.height / 2);
  await page.waitForFunction(() => document.getElementById('player').currentTime < 50, null, WAIT);
  const from = await page.evaluate(() => document.getElementById('player').currentTime);
  await page.waitForFunction((t) => document.getElementById('player').currentTime > t + 0.5, from, WAIT);
  log(`clicked the waveform: playing on from ${from.toFixed(2)} s`);
  await page.evaluate(() => document.getElementById('player').pause());
  await shot(page, '04-playing');

  // ---- a call in progress: opened by id, purpose first, then followed as it is recorded -------
  // Not stored yet, so its recording page (404) points to the live page.
  await page.goto(`${BASE}/console#/recording/${LIVE}`);
  await page.waitForSelector(`a[href="#/live/${LIVE}"]`, WAIT);
  page.problems = page.problems.filter((p) => !p.endsWith(`/api/v1/recordings/${LIVE}`) || !p.includes(': 404 '));
  await page.goto(`${BASE}/console#/search`);
  await page.waitForSelector('#live-form', WAIT);
  await page.fill('#f-call_id', LIVE);
  await page.press('#f-call_id', 'Enter');
  await page.waitForSelector('#purpose-form', WAIT);
  assert.equal(await page.locator('audio').count(), 0, 'live audio offered before a purpose was stated');
  await page.selectOption('#f-purpose_code', 'clinical_followup');
  await page.fill('#f-purpose_text', 'caller describes chest pain, supervisor joins the call');
  await page.click('#purpose-form button[type=submit]');
  await page.waitForSelector('#player', WAIT);
  // The stream has no end yet: what is played keeps growing while the recorder sends chunks
  // (the Rust side sends one 100 ms chunk per 100 ms, after 3 s sent up front).
  const live = await page.evaluate(async () => {
    const a = document.getElementById('player');
    const end = () => (a.buffered.length ? a.buffered.end(a.buffered.length - 1) : 0);
    const until = async (ok) => {
      const start = performance.now();
      while (!ok() && performance.now() - start < 15000) await new Promise((r) => setTimeout(r, 50));
    };
    await until(() => a.currentTime > 1);
    const first = { t: a.currentTime, buffered: end() };
    await until(() => a.currentTime > first.t + 3 && end() > first.buffered + 3);
    return { first, then: { t: a.currentTime, buffered: end() }, paused: a.paused, heard: document.getElementById('live-heard').textContent };
  });
  log(`followed the live call: ${JSON.stringify(live)}`);
  assert.ok(live.first.t > 1, `live audio did not start: ${JSON.stringify(live)}`);
  assert.ok(live.then.t > live.first.t + 3, `live playback did not go on: ${JSON.stringify(live)}`);
  assert.ok(live.then.buffered > live.first.buffered + 3, `no new audio arrived: ${JSON.stringify(live)}`);
  // Past the 3 s sent up front: what was heard arrived after playback began.
  assert.ok(live.then.t > 4, `live playback stayed within the first chunks: ${JSON.stringify(live)}`);
  assert.match(live.heard, /Heard so far: 0:0[4-9]|Heard so far: 0:[1-5]\d/);
  await shot(page, '04b-live');
  await page.evaluate(() => document.getElementById('player').pause());

  // ---- a listener cannot reach admin pages ---------------------------------------------------
  assert.equal(await page.locator('header nav a[href="#/admin/users"]').count(), 0);
  await page.goto(`${BASE}/console#/admin/users`);
  await page.waitForSelector('#forbidden', WAIT);
  assert.equal(await page.locator('table').count(), 0);
  const apiStatus = await page.evaluate(async () => (await fetch('/api/v1/users')).status);
  assert.equal(apiStatus, 403);
  await shot(page, '05-listener-refused-admin');
  log('listener refused the admin pages (console and API: 403)');

  // ---- Swedish, per user ---------------------------------------------------------------------
  await page.goto(`${BASE}/console#/search`);
  await page.waitForSelector('#search-form', WAIT);
  await page.selectOption('#lang', 'sv');
  await page.waitForSelector('header nav a:text("Sök")', WAIT);
  assert.equal(await page.getAttribute('html', 'lang'), 'sv');
  // Kept with the account, not only in this browser.
  const kept = await page.evaluate(async () => (await (await fetch('/api/v1/auth/me')).json()).language);
  assert.equal(kept, 'sv');
  await shot(page, '06-search-swedish');
  // Readable on a tablet: nothing wider than the viewport.
  await page.setViewportSize({ width: 820, height: 1180 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 820), 'the page scrolls sideways on a tablet');
  await shot(page, '06b-search-tablet');
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.selectOption('#lang', 'en');
  await page.waitForSelector('header nav a:text("Search")', WAIT);
  log('switched to Swedish and back');

  // ---- session end is shown politely ---------------------------------------------------------
  await nurse.ctx.clearCookies();
  await page.click('#search-form button[type=submit]');
  await page.waitForSelector('#notice', WAIT);
  assert.match(await page.textContent('#notice'), /signed out|expired/);
  log('a lost session leads back to sign-in with a note');
  assert.deepEqual(page.problems, []);

  // ---- auditor: sees the access, has no way to play ------------------------------------------
  // Signed in with the keyboard alone: focus starts on the page heading, Tab reaches the form.
  const aud = await session('auditor');
  page = aud.page;
  state.page = page;
  const auditor = account('CV_AUDITOR');
  await page.goto(`${BASE}/console`);
  await page.waitForSelector('#login-form', WAIT);
  await page.waitForFunction(() => document.activeElement.tagName === 'H1', null, WAIT);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'f-username');
  await page.keyboard.type(auditor.user);
  await page.keyboard.press('Tab');
  await page.keyboard.type(auditor.password);
  await page.keyboard.press('Tab');
  await page.keyboard.type(totp(auditor.secret));
  await page.keyboard.press('Enter');
  // Once the page has drawn, focus sits on its heading (screen readers announce the new page).
  await page.waitForFunction(() => document.activeElement.tagName === 'H1'
    && document.activeElement.textContent === 'Access record', null, WAIT);
  await page.goto(`${BASE}/console#/audit?action=recording.access`);
  await page.waitForSelector('table tbody tr', WAIT);
  const row = await page.textContent('table tbody');
  assert.match(row, /user:nurse/);
  assert.match(row, /quality_review/);
  await shot(page, '07-audit-record');
  await page.click(`table tbody a[href="#/audit/recording/${REC}"]`);
  await page.waitForSelector('#report-summary', WAIT);
  assert.match(await page.textContent('#report-summary'), /^1 people/);
  await shot(page, '08-access-report');
  await page.goto(`${BASE}/console#/audit/caller`);
  await page.fill('#f-caller_number', '+46701234567');
  await page.fill('#f-tenant', 'region-a');
  await page.click('#caller-form button[type=submit]');
  await page.waitForSelector('#caller-summary', WAIT);
  assert.match(await page.textContent('#caller-summary'), /^1 recordings/);
  assert.match(await page.textContent('#caller-report table'), /quality_review/);
  await shot(page, '08b-caller-report');
  await page.goto(`${BASE}/console#/audit/verify`);
  await page.waitForSelector('#verify-status', WAIT);
  assert.match(await page.textContent('#verify-status'), /intact/);
  await shot(page, '09-integrity');
  await page.goto(`${BASE}/console#/charts`);
  await page.waitForFunction(() => [...document.querySelectorAll('img.chart')].length === 3
    && [...document.querySelectorAll('img.chart')].every((i) => i.complete && i.naturalWidth > 0), null, WAIT);
  await shot(page, '09b-charts');
  await page.goto(`${BASE}/console#/recording/${REC}`);
  await page.waitForSelector('#forbidden', WAIT);
  assert.equal(await page.locator('audio, #purpose-form').count(), 0, 'the auditor was offered audio');
  const grant = await page.evaluate(async (id) => (await fetch(`/api/v1/recordings/${id}/access`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ purpose_code: 'complaint', purpose_text: 'trying to listen as an auditor' }),
  })).status, REC);
  assert.equal(grant, 403);
  assert.deepEqual(page.problems, []);
  log('auditor saw the access with its purpose, the report and an intact chain; no audio');

  // ---- admin: users (confirmed, one-time password shown once), posture -----------------------
  const adm = await session('admin');
  page = adm.page;
  state.page = page;
  await signIn(page, account('CV_ADMIN'));
  await page.waitForSelector('#user-form', WAIT);
  await page.fill('#f-username', 'newbie');
  await page.fill('#f-tenant', 'region-a');
  await page.click('#user-form button[type=submit]');
  await page.waitForSelector('dialog#confirm', WAIT);
  await shot(page, '10-admin-confirm');
  await page.click('#confirm-yes');
  await page.waitForSelector('#shown-once', WAIT);
  const oneTime = (await page.textContent('#shown-once .secret')).trim();
  assert.match(await page.textContent('table'), /newbie/);
  await shot(page, '11-admin-users');
  await page.goto(`${BASE}/console#/admin/posture`);
  await page.waitForSelector('table, #posture-clean', WAIT);
  await shot(page, '12-posture');
  log('admin created a user after confirming; posture page drawn');

  // ---- admin: a retention rule, set through the menu with the keyboard, confirmed ------------
  await page.click('header nav a[href="#/admin/policies"]');
  await page.waitForSelector('#retention-form', WAIT);
  assert.equal(await page.inputValue('#f-policy-tenant'), 'region-a');
  assert.match(await page.textContent('#policies-h + p + .table-wrap'), /tenant default/);
  assert.match(await page.textContent('#retention-rules'), /No retention rules/);
  await page.selectOption('#f-scope', 'tenant');
  await page.fill('#f-days', '400');
  await page.press('#f-days', 'Enter');
  await page.waitForSelector('dialog#confirm', WAIT);
  assert.match(await page.textContent('#confirm-msg'), /region-a .*400 days/);
  // Escape cancels: nothing is set.
  await page.keyboard.press('Escape');
  await page.waitForSelector('dialog#confirm', { state: 'detached', ...WAIT });
  assert.match(await page.textContent('#retention-rules'), /No retention rules/);
  await page.press('#f-days', 'Enter');
  await page.waitForSelector('dialog#confirm', WAIT);
  await shot(page, '12b-retention-confirm');
  await page.click('#confirm-yes');
  await page.waitForSelector('#retention-rules table', WAIT);
  assert.match(await page.textContent('#retention-rules tbody'), /every recording.*400.*user:admin/);
  await shot(page, '12c-policies');
  assert.deepEqual(page.problems, []);
  log('admin set a retention rule of 400 days after confirming (Escape cancelled the first try)');

  // ---- privacy officer: own tenant's policies, a legal hold placed and lifted ----------------
  const po = await session('privacy');
  page = po.page;
  state.page = page;
  await signIn(page, account('CV_PRIVACY'));
  await page.goto(`${BASE}/console#/admin/policies`);
  await page.waitForSelector('#retention-rules table', WAIT);
  assert.equal(await page.locator('#policy-tenant-form').count(), 0, 'a one-tenant account was offered other tenants');
  assert.match(await page.textContent('#retention-rules'), /400/);
  await page.click('header nav a[href="#/privacy/holds"]');
  await page.waitForSelector('#hold-form', WAIT);
  await page.fill('#f-recording_id', REC);
  await page.fill('#f-reason', 'complaint case 2026-117, keep until closed');
  await page.click('#hold-form button[type=submit]');
  await page.waitForSelector('dialog#confirm', WAIT);
  await page.click('#confirm-yes');
  await page.waitForSelector('table tbody tr', WAIT);
  assert.match(await page.textContent('table tbody'), new RegExp(`${REC}.*complaint case 2026-117`));
  await shot(page, '14-holds');
  await page.click('table tbody button.danger');
  await page.waitForSelector('dialog#confirm', WAIT);
  await page.click('#confirm-yes');
  await page.waitForFunction(() => !document.querySelector('table tbody button.danger'), null, WAIT);
  assert.match(await page.textContent('table tbody'), /user:privacy/);
  assert.deepEqual(page.problems, []);
  log('privacy officer saw the retention rule, placed a legal hold on the call and lifted it, each confirmed');

  // ---- first sign-in: new password, authenticator enrolment with a QR code -------------------
  const nb = await session('newbie');
  page = nb.page;
  state.page = page;
  await page.goto(`${BASE}/console`);
  await page.waitForSelector('#login-form', WAIT);
  await page.fill('#f-username', 'newbie');
  await page.fill('#f-password', oneTime);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#password-form', WAIT);
  await page.fill('#f-current_password', oneTime);
  await page.fill('#f-new_password', 'Violet-Harbour-Lantern-42');
  await page.fill('#f-repeat_password', 'Violet-Harbour-Lantern-42');
  await page.click('#password-form button[type=submit]');
  await page.waitForSelector('#enroll-form', WAIT);
  await page.waitForFunction(() => document.getElementById('qr').naturalWidth > 0, null, WAIT);
  await shot(page, '13-enroll-qr');
  const secret = (await page.textContent('#totp-secret')).trim();
  await page.fill('#f-code', totp(secret, 0));
  await page.click('#enroll-form button[type=submit]');
  await page.waitForSelector('#search-form', WAIT);
  assert.deepEqual(page.problems, []);
  log('first sign-in: password changed, authenticator enrolled from the QR page');

  log('all console checks passed');
});
