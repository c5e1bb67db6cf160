// Where the uncached rerank's time goes in the browser: samples the page
// thread with the DevTools profiler while bench/page.mjs runs the uncached
// case (a new event and never-seen candidates before every rerank) on the
// page thread, and prints the functions with the most self time. For
// function names, build the CPU wasm without wasm-opt's stripping
// (SHELFRANK_WASM_OPT=0 node tools/build.mjs, or wasm-bindgen --keep-debug).
//
//   node bench/profile.mjs [candidates=100] [runs=200] [cached]
//
// With `cached`, the cached case instead: the same list reranked under an
// unchanged history (session state and text vectors reused).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../tests/browser/harness.mjs';
import { serve } from '../tools/static-server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [candidates = 100, runs = 200] = process.argv.slice(2, 4).map(Number);
const cachedCase = process.argv[4] === 'cached';
const server = await serve(root, 0);
const chrome = await launchChromium();
try {
  const page = await chrome.browser.newPage();
  await page.goto(`${server.url}/bench/page.html`);
  await page.waitForFunction(() => window.benchReady === true, null, { timeout: 120_000 });
  // Warm up (tier-up), then profile.
  if (cachedCase) await page.evaluate((c) => window.bench.prepareCached(c), { history: 50, candidates });
  else await page.evaluate((c) => window.bench.benchUncached(c), { worker: false, history: 50, candidates, runs: 20, warmup: 10 });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
  await cdp.send('Profiler.start');
  const result = cachedCase
    ? await page.evaluate((n) => window.bench.cachedReranks(n), runs)
    : (await page.evaluate((c) => window.bench.benchUncached(c), { worker: false, history: 50, candidates, runs, warmup: 0, warmupMs: 0 })).shelfrank;
  const { profile } = await cdp.send('Profiler.stop');
  console.log(`${cachedCase ? 'cached' : 'uncached'} ${candidates} × 50 on the page thread: p50 ${result.p50_ms.toFixed(2)} ms over ${runs} runs`);
  const self = new Map();
  const parents = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  let total = 0;
  const inclusive = new Map();
  for (const [id, count] of counts) {
    total += count;
    const name = byId.get(id).callFrame.functionName || '(anonymous)';
    self.set(name, (self.get(name) ?? 0) + count);
    const seen = new Set();
    for (let at = id; at !== undefined; at = parents.get(at)) {
      const n = byId.get(at).callFrame.functionName || '(anonymous)';
      if (seen.has(n)) continue;
      seen.add(n);
      inclusive.set(n, (inclusive.get(n) ?? 0) + count);
    }
  }
  const top = (map, k) => [...map].sort((a, b) => b[1] - a[1]).slice(0, k).map(([n, c]) => `${((100 * c) / total).toFixed(1).padStart(5)}%  ${n.slice(0, 150)}`);
  console.log('self time:\n' + top(self, 40).join('\n'));
  console.log('\ninclusive time:\n' + top(inclusive, 60).join('\n'));
} finally {
  await chrome.close();
  await server.close();
}
