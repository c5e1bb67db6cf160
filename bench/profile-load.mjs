// Where a first page view's `Ranker.load` spends its time: a fresh browser
// (nothing compiled or cached), the CPU wasm compiled and the model loaded
// on the page thread under the DevTools profiler; prints the stages and
// the functions with the most self time, over `runs` fresh browsers.
// For function names, build with SHELFRANK_WASM_OPT=0.
//
//   node bench/profile-load.mjs [runs=3]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../tests/browser/harness.mjs';
import { serve } from '../tools/static-server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.argv[2] ?? 3);
const server = await serve(root, 0);
const self = new Map();
let total = 0;
try {
  for (let run = 0; run < runs; run++) {
    const chrome = await launchChromium({ webgpu: false });
    try {
      const page = await chrome.browser.newPage();
      await page.goto(`${server.url}/bench/load.html`);
      await page.waitForFunction(() => window.loadReady === true);
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
      await cdp.send('Profiler.start');
      const stages = await page.evaluate(() => window.coldLoad());
      const { profile } = await cdp.send('Profiler.stop');
      console.log(JSON.stringify(Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, Math.round(v * 10) / 10]))));
      const byId = new Map(profile.nodes.map((n) => [n.id, n]));
      // Time per sample from the profile's own deltas (µs).
      profile.samples.forEach((id, i) => {
        const us = profile.timeDeltas[i + 1] ?? 0;
        const name = byId.get(id).callFrame.functionName || '(anonymous)';
        self.set(name, (self.get(name) ?? 0) + us);
        total += us;
      });
    } finally {
      await chrome.close();
    }
  }
} finally {
  server.close();
}
console.log(`self time per run (ms), of ${(total / runs / 1000).toFixed(1)} ms sampled:`);
for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${(us / runs / 1000).toFixed(1).padStart(7)}  ${name.slice(0, 110)}`);
