// Shared set-up for the browser tests: pack the npm package exactly as it
// would be published, unpack it next to a test page, serve both on
// 127.0.0.1, and drive system Chromium (WebGPU on) with playwright-core.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from '../../tools/static-server.mjs';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let catalogCache = null;
/** The demo catalog the test pages load as /data/catalog.json (built by tools/build.mjs). */
export function loadCatalog() {
  catalogCache ??= JSON.parse(readFileSync(path.join(root, 'www/demo/catalog.json'), 'utf8'));
  return catalogCache;
}

/**
 * A personalisation scenario on the real catalog: the third-largest
 * category (`focus`, with its items), and the first `perOther` items of
 * each of the next nine categories, to build server lists around it.
 */
export function categoryScenario(perOther) {
  const byCategory = new Map();
  for (const item of loadCatalog()) {
    if (!item.category) continue;
    if (!byCategory.has(item.category)) byCategory.set(item.category, []);
    byCategory.get(item.category).push(item);
  }
  const ranked = [...byCategory.entries()].sort((a, b) => b[1].length - a[1].length);
  const [focus, focusItems] = ranked[2];
  const others = ranked.slice(3, 12).flatMap(([, items]) => items.slice(0, perOther));
  return { focus, focusItems, others };
}

/**
 * Sessions where the sequence, not the category, must decide: the
 * training sequences' most frequent item → next-item pairs whose two items
 * lie in different categories. Each session is the first item alone; its
 * 20-item list holds 19 other items of that item's category, then the
 * real next item last. Text likeness to the session favours the 19; only
 * what the model learned about sequences can lift the next item.
 */
export function sequenceScenarios(count) {
  const catalog = loadCatalog();
  // The validation file's histories are the training sequences.
  const lines = readFileSync(path.join(root, 'data/scientific/Scientific.valid.inter'), 'utf8').trim().split('\n').slice(1);
  const pairs = new Map();
  for (const line of lines) {
    const sequence = line.split('\t')[1].split(' ').map(Number);
    for (let t = 1; t < sequence.length; t++) {
      const [a, b] = [sequence[t - 1], sequence[t]];
      if (a === b || !catalog[a].category || catalog[a].category === catalog[b].category) continue;
      const key = `${a} ${b}`;
      pairs.set(key, (pairs.get(key) ?? 0) + 1);
    }
  }
  const byCategory = new Map();
  for (const [i, item] of catalog.entries()) {
    if (!byCategory.has(item.category)) byCategory.set(item.category, []);
    byCategory.get(item.category).push(i);
  }
  const frequent = [...pairs.entries()].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
  const scenarios = [];
  const used = new Set();
  for (const [key] of frequent) {
    const [a, b] = key.split(' ').map(Number);
    if (used.has(a)) continue;
    const others = byCategory.get(catalog[a].category).filter((i) => i !== a && i !== b).slice(0, 19);
    if (others.length < 19) continue;
    used.add(a);
    scenarios.push({ history: [catalog[a]], list: [...others, b].map((i) => catalog[i]), target: catalog[b].id });
    if (scenarios.length === count) break;
  }
  return scenarios;
}

/** Packs the package with `npm pack` and unpacks it under a fresh folder. */
export function packedPackage() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'shelfrank-site-'));
  const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop();
  execFileSync('tar', ['xzf', path.join(dir, tarball), '-C', dir]);
  cpSync(path.join(root, 'tests/browser/fixtures'), path.join(dir, 'fixtures'), { recursive: true });
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  cpSync(path.join(root, 'www/demo/catalog.json'), path.join(dir, 'data/catalog.json'));
  return { dir, files: listFiles(path.join(dir, 'package')) };
}

function listFiles(dir, prefix = '') {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

/**
 * System Chromium with the flags every run here needs (and WebGPU on its
 * software adapter unless `webgpu` is false), in a fresh profile. Resolves
 * to { browser, close }; close() also removes the profile.
 */
export async function launchChromium({ webgpu = true, ...options } = {}) {
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'shelfrank-chromium-'));
  const args = ['--headless', '--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  const browser = await chromium.launchPersistentContext(userDataDir, { executablePath: '/usr/bin/chromium', headless: true, args, ...options });
  return {
    browser,
    async close() {
      await browser.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Starts the server (with `serve`'s optional `handler`) and the browser; returns helpers and a close(). */
export async function startSite({ handler = null } = {}) {
  const site = packedPackage();
  const server = await serve(site.dir, 0, handler);
  const chrome = await launchChromium();
  const browser = chrome.browser;
  const pageErrors = [];
  async function openPage(fixture = 'index.html', { initScript } = {}) {
    const page = await browser.newPage();
    if (initScript) await page.addInitScript(initScript);
    page.on('pageerror', (error) => pageErrors.push(error));
    page.on('console', (msg) => {
      if (process.env.SHELFRANK_TEST_CONSOLE) console.error(`[page] ${msg.text()}`);
    });
    await page.goto(`${server.url}/fixtures/${fixture}`);
    await page.waitForFunction(() => window.shelfrank !== undefined && window.catalog !== undefined && (window.renderList === undefined || window.shopReady));
    return page;
  }
  return {
    site,
    browser,
    url: server.url,
    pageErrors,
    openPage,
    async close() {
      await chrome.close();
      await server.close();
      rmSync(site.dir, { recursive: true, force: true });
    },
  };
}
