// `npm run bench`: shelfrank against ONNX Runtime Web, the same model on
// the same inputs, in headless Chromium. Prints one JSON line per case:
//   { engine, case, backend, candidates, history, p50_ms, p95_ms, memory_mb, ... }
// then one ratio line per case (shelfrank / ORT-web). `case` is
// `uncached` (the headline, like for like: a new event and never-seen
// candidates before every rerank, tokenising inside both timers) or
// `cached` (shelfrank reuses its state and vectors; ORT cannot). Not a
// test: numbers.
//
//   node bench/run.mjs [--quick] [--no-ort] [--no-webgpu] [--uncached-only] [--no-pages]
//
// Last, the `page-view` case (bench/pages.mjs): ten product pages of a
// multi-page shop, each a full navigation, per page and summarised.
//
// The page is served cross-origin isolated so the browser reports memory
// (performance.measureUserAgentSpecificMemory, which counts workers and
// wasm memory). Isolation would let ORT-web run threads: the page asks it
// for one (bench/ort.mjs sets ort.env.wasm.numThreads), and this runner
// stops if ORT reports more, so both sides stay single-threaded. WebGPU
// here is Chromium's software adapter unless the machine has a GPU; the
// output names the adapter.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../tests/browser/harness.mjs';
import { serve } from '../tools/static-server.mjs';
import { runPageViews } from './pages.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const withOrt = !args.has('--no-ort');
const withWebgpu = !args.has('--no-webgpu');

const onnxFile = path.join(root, 'target/bench/shelfrank.onnx');
fs.mkdirSync(path.dirname(onnxFile), { recursive: true });
if (withOrt) {
  execFileSync('bash', [path.join(root, 'bench/setup.sh')], { cwd: root, stdio: 'inherit' });
  execFileSync(path.join(root, 'target/bench-venv/bin/python'), [path.join(root, 'bench/onnx/export.py'), 'models/shelfrank-scientific.bin', onnxFile], {
    cwd: root,
    stdio: 'inherit',
  });
}

const server = await serve(root, 0, (req, res) => {
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
  return false;
});
const chrome = await launchChromium();
const browser = chrome.browser;

const print = (line) => console.log(JSON.stringify(line));
const round = (x) => (typeof x === 'number' ? Math.round(x * 1000) / 1000 : x);
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(`${server.url}/bench/page.html`);
  await page.waitForFunction(() => window.benchReady === true, null, { timeout: 120_000 });
  const host = await page.evaluate(() => ({ userAgent: navigator.userAgent, cores: navigator.hardwareConcurrency, isolated: crossOriginIsolated }));
  print({ engine: 'host', ...host, machine: `${os.cpus()[0]?.model} × ${os.cpus().length}` });

  // The headline: uncached, like for like (see bench/page.mjs
  // freshCandidates). Tokenising is inside both timers, with the same
  // WordPiece; CPU only, single-threaded on both sides; history 50.
  const ratio = (name, against, us, them, extra = {}) =>
    print({ engine: 'ratio', ...extra, backend: `shelfrank ${name} / ort-web ${against}`, candidates: us.candidates, history: us.history, p50: round(us.p50_ms / them.p50_ms), p95: round(us.p95_ms / them.p95_ms) });
  const strip = ({ scores, ...line }) => Object.fromEntries(Object.entries(line).map(([k, v]) => [k, k === 'max_score_diff' ? v : round(v)]));
  for (const candidates of quick ? [100] : [100, 1000, 5000]) {
    const history = 50;
    const runs = candidates >= 5000 ? 10 : candidates >= 1000 ? 30 : 150;
    const warmup = candidates >= 1000 ? 5 : 30;
    // Each in a fresh page: onnxruntime-web's settings are global.
    for (const worker of [false, true]) {
      const pair = await browser.newPage();
      pair.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
      await pair.goto(`${server.url}/bench/page.html`);
      await pair.waitForFunction(() => window.benchReady === true, null, { timeout: 120_000 });
      const result = await pair.evaluate((c) => window.bench.benchUncached(c), { worker, history, candidates, runs, warmup, onnxUrl: withOrt ? '/target/bench/shelfrank.onnx' : null });
      await pair.close();
      print(strip(result.shelfrank));
      if (!result.ort) continue;
      if (result.ort.threads !== 1) throw new Error(`ORT-web ran ${result.ort.threads} threads; the comparison is single-threaded on both sides`);
      print(strip(result.ort));
      ratio(`cpu ${worker ? 'worker' : 'page thread'}`, 'wasm', result.shelfrank, result.ort, { case: 'uncached' });
    }
  }

  // Cached: the same list reranked again with the same history, so
  // shelfrank reuses its session state and candidate vectors while ORT
  // runs the whole network. Not like for like: labelled, with its own ratio.
  const sizes = args.has('--uncached-only') ? [] : quick ? [20, 100] : [20, 100, 1000, 5000];
  const histories = quick ? [50] : [10, 50];
  const runsFor = (n, backend) => (backend === 'webgpu' ? (n >= 1000 ? 5 : 10) : n >= 1000 ? 10 : 30);
  for (const history of histories) {
    for (const candidates of sizes) {
      const ours = {};
      // The CPU path as a page sees it (worker) and the engine alone (page thread).
      for (const [backend, worker] of [['cpu', true], ['cpu', false], ...(withWebgpu ? [['webgpu', true]] : [])]) {
        const result = await page.evaluate((c) => window.bench.benchShelfrank(c), { backend, worker, history, candidates, runs: runsFor(candidates, backend), warmup: backend === 'webgpu' ? 3 : 20 });
        const { scores, ...line } = { case: 'cached', ...result };
        if (worker) ours[backend] = result;
        else ours[`${backend} page thread`] = result;
        print(Object.fromEntries(Object.entries(line).map(([k, v]) => [k, round(v)])));
      }
      if (!withOrt) continue;
      for (const [ep, against] of [['wasm', 'cpu'], ...(withWebgpu ? [['webgpu', 'webgpu']] : [])]) {
        // onnxruntime-web's settings are global: a fresh page per execution provider.
        const ortPage = await browser.newPage();
        ortPage.on('pageerror', (e) => console.error(`[ort page error] ${e.message}`));
        await ortPage.goto(`${server.url}/bench/page.html`);
        await ortPage.waitForFunction(() => window.benchReady === true, null, { timeout: 120_000 });
        let result;
        try {
          result = await ortPage.evaluate((c) => window.bench.benchOrt(c), { ep, history, candidates, runs: runsFor(candidates, against), warmup: ep === 'webgpu' ? 3 : 20, onnxUrl: '/target/bench/shelfrank.onnx' });
        } catch (error) {
          print({ engine: 'ort-web', backend: ep, candidates, history, error: String(error.message ?? error).split('\n')[0] });
          continue;
        } finally {
          await ortPage.close();
        }
        const { scores, ...line } = { case: 'cached', ...result };
        if (line.threads !== 1) throw new Error(`ORT-web ran ${line.threads} threads; the comparison is single-threaded on both sides`);
        // The same model: ORT's scores against shelfrank's on the same case.
        const mine = ours.cpu.scores;
        const diff = Math.max(...scores.map((s, i) => Math.abs(s - mine[i])));
        print({ ...Object.fromEntries(Object.entries(line).map(([k, v]) => [k, round(v)])), max_score_diff: Number(diff.toExponential(2)) });
        // Through the worker (what a shop gets by default, one message
        // round trip more than ORT, which runs on the page), and on the
        // page thread like ORT.
        for (const [name, us] of [[against, ours[against]], [`${against} page thread`, ours[`${against} page thread`]]]) {
          if (!us) continue;
          print({
            engine: 'ratio',
            case: 'cached (shelfrank reuses state, vectors and the list it was sent; ORT computes everything)',
            backend: `shelfrank ${name} / ort-web ${ep}`,
            candidates,
            history,
            p50: round(us.p50_ms / line.p50_ms),
            p95: round(us.p95_ms / line.p95_ms),
            cold: round(us.cold_ms / line.cold_ms),
          });
        }
      }
    }
  }
} finally {
  await chrome.close();
  await server.close();
}
if (!args.has('--no-pages')) await runPageViews({ pages: quick ? 5 : 10, print });
