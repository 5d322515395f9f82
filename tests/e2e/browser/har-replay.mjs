// Test-only: prove that a browser tool reads the HAR archives `oauthcli log --har` writes.
// Debian's chromium, headless, driven by playwright-core, answers every request from the
// archive (BrowserContext.routeFromHAR: Playwright's own HAR reader, notFound: 'abort', so
// nothing reaches a network) and reports what the page received.
//
//   node har-replay.mjs ARCHIVE.har REQUESTS.json
//
// REQUESTS.json: [{"method": "GET", "url": "...", "body": null | "..."}]; the first GET is
// loaded as the page (navigation), each request then sent with fetch() from it. Prints one
// JSON line: [{"status", "statusText", "contentType", "body"} | {"error"}] in that order.
// Exit code 0 when the browser ran (whatever it answered), else 1.

import { readFileSync } from 'node:fs';

import { chromium } from 'playwright-core';

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-proxy-server', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
];

const [archive, requestsFile] = process.argv.slice(2);
const requests = JSON.parse(readFileSync(requestsFile, 'utf8'));
const browser = await chromium.launch({
  executablePath: process.env.E2E_CHROMIUM || '/usr/bin/chromium',
  args: FLAGS,
  timeout: 30000,
});
try {
  const context = await browser.newContext();
  await context.routeFromHAR(archive, { notFound: 'abort' });
  const page = await context.newPage();
  const first = requests.find((r) => r.method === 'GET');
  const answers = [];
  if (first) {
    const response = await page.goto(first.url);
    answers.push({
      navigation: true,
      status: response.status(),
      statusText: response.statusText(),
      contentType: response.headers()['content-type'] ?? null,
      body: await response.text(),
    });
  }
  for (const r of requests) {
    answers.push(await page.evaluate(async ({ method, url, body }) => {
      try {
        const response = await fetch(url, { method, body: body ?? undefined });
        return {
          status: response.status,
          statusText: response.statusText,
          contentType: response.headers.get('content-type'),
          body: await response.text(),
        };
      } catch (e) {
        return { error: String(e) };
      }
    }, r));
  }
  process.stdout.write(`${JSON.stringify(answers)}\n`);
} finally {
  await browser.close();
}
