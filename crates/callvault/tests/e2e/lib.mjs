// Shared by the console's browser scripts (console.mjs, expiry.mjs): environment, TOTP codes,
// a Chromium profile that records every problem, screenshots, sign-in, and a runner that leaves
// a screenshot and the page text behind when a check fails.
import { chromium } from 'playwright-core';
import { createHmac } from 'node:crypto';
import path from 'node:path';

export const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set; run this through crates/callvault/tests/console.rs`);
  return v;
};
export const BASE = env('CV_BASE');
const SHOTS = env('CV_SHOTS');
export const account = (k) => {
  const [user, password, secret] = env(k).split(':');
  return { user, password, secret };
};
export const WAIT = { timeout: 20000 };

function base32(s) {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0; let value = 0; const out = [];
  for (const c of s.replace(/=+$/, '')) {
    value = (value << 5) | abc.indexOf(c);
    bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 255); bits -= 8; }
  }
  return Buffer.from(out);
}

/** RFC 6238 code for the step after now: the server allows one step of skew, and the step the
 *  account enrolled with may be the current one (codes are never accepted twice). */
export function totp(secret, offsetSteps = 1) {
  const step = Math.floor(Date.now() / 1000 / 30) + offsetSteps;
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32(secret)).update(msg).digest();
  const o = mac[mac.length - 1] & 15;
  const n = ((mac[o] & 127) << 24) | (mac[o + 1] << 16) | (mac[o + 2] << 8) | mac[o + 3];
  return String(n % 1e6).padStart(6, '0');
}

export const log = (...a) => console.log('[console-e2e]', ...a);

export const browser = await chromium.launch({
  executablePath: env('CV_CHROMIUM'),
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--autoplay-policy=no-user-gesture-required'],
});

/** A fresh browser profile that fails on any CSP violation or page error. */
export async function session(name) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
  const page = await ctx.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`${name}: page error ${e.message}`));
  // Refusals (401, 403) are expected where the test provokes them; anything else is a problem.
  page.on('response', (r) => {
    if (r.status() >= 400 && ![401, 403].includes(r.status())) page.problems.push(`${name}: ${r.status()} ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) page.problems.push(`${name}: console ${m.text()}`);
  });
  page.ranges = [];
  page.partial = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/v1/playback/') && !r.url().endsWith('/waveform')) page.ranges.push(r.headers().range || 'none');
  });
  page.on('response', (r) => {
    const m = (r.headers()['content-range'] || '').match(/^bytes (\d+)-/);
    if (r.url().includes('/api/v1/playback/') && r.status() === 206 && m) page.partial.push(Number(m[1]));
  });
  return { ctx, page };
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

export async function signIn(page, { user, password, secret }) {
  await page.goto(`${BASE}/console`);
  await page.waitForSelector('#login-form', WAIT);
  await page.fill('#f-username', user);
  await page.fill('#f-password', password);
  await page.fill('#f-totp_code', totp(secret));
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#logout', WAIT);
}

/** Runs `body(state)`; on failure saves `failure.png` of `state.page` and prints its text. */
export async function run(body) {
  const state = {};
  try {
    await body(state);
  } catch (e) {
    if (state.page) {
      await shot(state.page, 'failure').catch(() => {});
      console.log('page text at failure:', (await state.page.textContent('body').catch(() => '')).slice(0, 2000));
    }
    throw e;
  } finally {
    await browser.close();
  }
}
