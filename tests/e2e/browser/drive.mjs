// Test-only browser for oauthcli's end-to-end tests: Debian's chromium, headless, driven by
// playwright-core, signs in at the e2e oidc-provider as a person would.
//
//   node drive.mjs URL
//
// Opens URL (what Python's webbrowser.open is given) in a new empty profile and goes through
// the provider's pages until the browser leaves the provider (the redirect to the loopback
// callback of the sign-in) or the device flow says "Sign-in Success":
//   login page (devInteractions)  -> login E2E_BROWSER_LOGIN (default alice), any password
//   consent page                  -> Continue (E2E_BROWSER_MODE=deny: [ Cancel ] = access_denied)
//   device code input page        -> E2E_BROWSER_USER_CODE (when the URL carries none)
//   device confirm page           -> Continue (deny: Abort)
// E2E_BROWSER_MODE=open only loads URL and stops (a person who never signs in).
//
// Only 127.0.0.1 / localhost / [::1] are reached: every other request is aborted inside the
// browser and every other host name resolves to nothing, so no page can reach the internet.
//
// Environment:
//   E2E_BROWSER_LOG         append one JSON line per step here (else stderr); query strings are
//                           reduced to their parameter names, so no code or state is written
//   E2E_BROWSER_PID_DIR     write a file named by this process id while it runs (for cleanup)
//   E2E_BROWSER_TIMEOUT_MS  give up after this long (default 30000)
//   E2E_CHROMIUM            the chromium binary (default /usr/bin/chromium)
// Exit code 0 when the sign-in went through to the callback (or to device success), else 1.

import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-proxy-server', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
];
const MAX_STEPS = 12;

const target = process.argv[2];
const mode = process.env.E2E_BROWSER_MODE || 'approve';
const login = process.env.E2E_BROWSER_LOGIN || 'alice';
const timeoutMs = Number(process.env.E2E_BROWSER_TIMEOUT_MS || 30000);
const executablePath = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
const pidFile = process.env.E2E_BROWSER_PID_DIR ? join(process.env.E2E_BROWSER_PID_DIR, String(process.pid)) : undefined;

function redactUrl(value) {
  try {
    const url = new URL(value);
    const names = [...url.searchParams.keys()];
    return `${url.origin}${url.pathname}${names.length ? `?${names.join('&')}` : ''}`;
  } catch {
    return String(value).replace(/[?#].*$/s, '');
  }
}

function redactText(text) {
  return String(text).replace(/(https?:\/\/[^\s"'<>]+)/g, (m) => redactUrl(m)).slice(0, 300);
}

function log(event) {
  const line = JSON.stringify({ at: Date.now() / 1000, pid: process.pid, ...event });
  if (process.env.E2E_BROWSER_LOG) appendFileSync(process.env.E2E_BROWSER_LOG, `${line}\n`);
  else console.error(line);
}

function isLoopback(value) {
  try {
    const url = new URL(value);
    return ['http:', 'https:'].includes(url.protocol) && LOOPBACK.has(url.hostname);
  } catch {
    return value.startsWith('data:') || value.startsWith('about:');
  }
}

async function visible(page, selector) {
  return (await page.locator(selector).count()) > 0;
}

async function submit(page, selector) {
  await Promise.all([page.waitForNavigation({ timeout: 15000 }), page.locator(selector).first().click()]);
}

async function step(page, start) {
  const url = new URL(page.url());
  if (url.origin !== start.origin) {
    const params = Object.fromEntries(url.searchParams.entries());
    return {
      done: true,
      outcome: 'callback',
      url: redactUrl(page.url()),
      code: 'code' in params,
      state: 'state' in params,
      error: params.error || null,
      body: (await page.locator('body').innerText().catch(() => '')).slice(0, 200),
    };
  }
  if (await visible(page, '#device-done')) return { done: true, outcome: 'device_success' };
  if (mode === 'open') return { done: true, outcome: 'opened', url: redactUrl(page.url()) };
  if (await visible(page, 'input[name="login"]')) {
    await page.fill('input[name="login"]', login);
    await page.fill('input[name="password"]', 'any password (dev interactions)');
    await submit(page, 'button[type="submit"]');
    return { page: 'login' };
  }
  if (await visible(page, 'input[name="prompt"][value="consent"]')) {
    if (mode === 'deny') {
      await Promise.all([page.waitForNavigation({ timeout: 15000 }), page.locator('a', { hasText: 'Cancel' }).first().click()]);
      return { page: 'consent', action: 'cancel' };
    }
    await submit(page, 'form button[type="submit"]');
    return { page: 'consent', action: 'continue' };
  }
  if (await visible(page, '#confirm')) {
    await submit(page, mode === 'deny' ? '#abort' : '#confirm');
    return { page: 'device_confirm', action: mode === 'deny' ? 'abort' : 'continue' };
  }
  if (await visible(page, '#error')) {
    const text = redactText(await page.locator('#error').innerText());
    return { done: true, outcome: mode === 'deny' ? 'device_denied' : 'stuck', page: 'device_input', text };
  }
  if (await visible(page, 'input[name="user_code"]:not([type="hidden"])')) {
    const code = process.env.E2E_BROWSER_USER_CODE;
    if (!code) return { done: true, outcome: 'stuck', page: 'device_input', reason: 'no E2E_BROWSER_USER_CODE' };
    await page.fill('input[name="user_code"]', code);
    await submit(page, 'button[type="submit"]');
    return { page: 'device_input' };
  }
  const title = await page.title().catch(() => '');
  const error = await page.locator('body').innerText().catch(() => '');
  return { done: true, outcome: 'stuck', url: redactUrl(page.url()), title, text: redactText(error) };
}

async function main() {
  if (!target || !isLoopback(target)) {
    log({ event: 'refused', reason: 'the URL must be http(s) on 127.0.0.1, localhost or [::1]', url: redactUrl(target || '') });
    return 2;
  }
  if (pidFile) writeFileSync(pidFile, `${process.pid}\n`);
  const start = new URL(target);
  const profile = mkdtempSync(join(tmpdir(), 'oauthcli-e2e-chromium-'));
  let context;
  let result = { outcome: 'error' };
  const timer = setTimeout(() => {
    log({ event: 'timeout', after_ms: timeoutMs });
    context?.close().catch(() => {}).finally(() => process.exit(1));
    setTimeout(() => process.exit(1), 5000).unref();
  }, timeoutMs);
  try {
    log({ event: 'open', url: redactUrl(target), mode });
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: FLAGS,
      timeout: 20000,
    });
    await context.route('**/*', (route) => (isLoopback(route.request().url())
      ? route.continue()
      : route.abort('blockedbyclient')));
    const page = context.pages()[0] || await context.newPage();
    await page.goto(target, { timeout: 15000 });
    for (let i = 0; i < MAX_STEPS; i += 1) {
      const r = await step(page, start);
      if (r.done) {
        result = r;
        break;
      }
      log({ event: 'step', ...r, next: redactUrl(page.url()) });
      result = { outcome: 'too_many_steps' };
    }
  } catch (err) {
    result = { outcome: 'error', message: redactText(err?.message || err) };
  } finally {
    clearTimeout(timer);
    log({ event: 'done', ...result });
    await context?.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
    if (pidFile) rmSync(pidFile, { force: true });
  }
  const ok = result.outcome === 'callback' ? !result.error : ['device_success', 'opened'].includes(result.outcome);
  const denied = mode === 'deny' && (result.error === 'access_denied' || result.outcome === 'device_denied');
  return ok || denied ? 0 : 1;
}

process.exitCode = await main();
