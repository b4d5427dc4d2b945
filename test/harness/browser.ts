/**
 * browser.ts (test harness) — Debian's headless Chromium driven by
 * playwright-core, for tests of pages served on loopback.
 *
 * Contract: no browser download (playwright-core + /usr/bin/chromium from
 * the Debian package `chromium`, which .ci/run installs); the flags a closed
 * network needs (no background networking, component updates, sync, QUIC or
 * first-run fetches) so Chromium itself opens no connection beyond the page's
 * own; `--no-sandbox` because tests run as root. Playwright gives every launch
 * a fresh temporary profile and removes it at close. A missing Chromium throws
 * one message naming the package.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export const CLOSED_NETWORK_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
];

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (.ci/run does)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CLOSED_NETWORK_ARGS], timeout: 60_000 });
}

/** Run `fn` with a fresh page in a fresh browser, closed afterwards whatever happens. */
export async function withPage<T>(fn: (page: Page) => Promise<T>, context: BrowserContextOptions = {}): Promise<T> {
  const browser = await launchBrowser();
  try {
    const ctx = await browser.newContext(context);
    const page = await ctx.newPage();
    return await fn(page);
  } finally {
    await browser.close();
  }
}

/** The text of every cell of a table, row by row (th and td). */
export async function tableCells(page: Page, selector: string): Promise<string[][]> {
  return page.$$eval(`${selector} tr`, (rows) => rows.map((r) => Array.from(r.querySelectorAll('th,td')).map((c) => (c.textContent ?? '').trim())));
}
