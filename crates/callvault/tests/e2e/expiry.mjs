// The end of a session is shown politely. Started by crates/callvault/tests/console.rs with a
// server whose sessions expire after a few idle seconds: a listener who keeps the search page
// open is sent back to sign-in with a note that says the session expired, not an error.
import assert from 'node:assert/strict';
import { WAIT, account, log, run, session, shot, signIn } from './lib.mjs';

await run(async (state) => {
  const { page } = await session('nurse');
  state.page = page;
  await signIn(page, account('CV_NURSE'));
  await page.waitForSelector('#search-form', WAIT);
  // Search every half second until the server says the session has expired.
  const deadline = Date.now() + WAIT.timeout;
  while ((await page.locator('#notice').count()) === 0) {
    assert.ok(Date.now() < deadline, 'the session never expired');
    await page.click('#search-form button[type=submit]').catch(() => {});
    await page.waitForTimeout(500);
  }
  assert.match(await page.textContent('#notice'), /session has expired/);
  assert.equal(await page.locator('#login-form').count(), 1);
  await shot(page, '14-session-expired');
  assert.deepEqual(page.problems, []);
  log('an expired session leads back to sign-in with a polite note');
});
