// Runs the ONNX export in headless Chromium with onnxruntime-web (bench/ort.mjs)
// and checks its scores against the Rust model's (the cases file), then
// times it. A check and a rough measurement, not a test:
//
//   cargo run --release --example export_inputs          # target/bench/cases.json
//   bench/setup.sh && target/bench-venv/bin/python bench/onnx/export.py \
//       models/shelfrank-scientific.bin target/bench/shelfrank.onnx
//   node bench/ort-check.mjs [--ort-dist DIR] [--model FILE] [--cases FILE] [--ep wasm,webgpu]
//                            [--runs 30] [--warmup 5] [--timing-case h50-c100] [--module ort.all.min.mjs]
//                            [--json OUT.json] [--verbose]
//
// Each execution provider runs on a fresh page, with ort.wasm.min.mjs for
// 'wasm' and ort.webgpu.min.mjs for 'webgpu' unless --module names one
// build (in dist/) for both.
//
// --ort-dist is onnxruntime-web's dist/ folder (default
// node_modules/onnxruntime-web/dist). Exits 1 when a score differs from the
// Rust model's by more than 1e-3 (or an execution provider fails to run).
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { serve } from '../tools/static-server.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    'ort-dist': { type: 'string', default: path.join(repo, 'node_modules/onnxruntime-web/dist') },
    model: { type: 'string', default: path.join(repo, 'target/bench/shelfrank.onnx') },
    cases: { type: 'string', default: path.join(repo, 'target/bench/cases.json') },
    ep: { type: 'string', default: 'wasm,webgpu' },
    runs: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5' },
    'timing-case': { type: 'string', default: 'h50-c100' },
    tolerance: { type: 'string', default: '1e-3' },
    module: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const TOLERANCE = Number(args.tolerance);
const RUNS = Number(args.runs);
const WARMUP = Number(args.warmup);
const MODULE_FOR = { wasm: 'ort.wasm.min.mjs', webgpu: 'ort.webgpu.min.mjs' };

const dist = path.resolve(args['ort-dist']);
if (!existsSync(path.join(dist, 'ort.wasm.min.mjs'))) {
  console.error(`ort-check: no onnxruntime-web dist/ at ${dist}; pass --ort-dist`);
  process.exit(2);
}
const ortVersion = JSON.parse(readFileSync(path.join(dist, '../package.json'), 'utf8')).version;
const cases = JSON.parse(readFileSync(args.cases, 'utf8'));

// One served root: the page, the model, the cases, bench/ort.mjs and the
// onnxruntime-web dist/ (wherever it is installed), linked in.
const site = mkdtempSync(path.join(os.tmpdir(), 'shelfrank-ort-site-'));
symlinkSync(dist, path.join(site, 'ort'));
symlinkSync(path.join(repo, 'bench'), path.join(site, 'bench'));
symlinkSync(path.resolve(args.model), path.join(site, 'model.onnx'));
symlinkSync(path.resolve(args.cases), path.join(site, 'cases.json'));
writeFileSync(path.join(site, 'index.html'), '<!doctype html><meta charset="utf-8"><title>ort bench</title><p>ort bench</p>\n');

const server = await serve(site, 0);
const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'shelfrank-ort-chromium-'));
const browser = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-quic', '--enable-unsafe-webgpu',
  ],
});

let failed = false;
const report = { onnxruntimeWeb: ortVersion, model: path.relative(repo, path.resolve(args.model)), results: [] };
try {
  for (const ep of args.ep.split(',').map((s) => s.trim()).filter(Boolean)) {
    const page = await browser.newPage();
    const fetched = new Set();
    const consoleLines = [];
    page.on('request', (req) => {
      const url = new URL(req.url());
      if (url.pathname.startsWith('/ort/')) fetched.add(url.pathname.slice(5));
    });
    page.on('console', (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
    page.on('pageerror', (error) => consoleLines.push(`pageerror: ${error.message}`));
    await page.goto(`${server.url}/index.html`);
    let result;
    try {
      result = await page.evaluate(
        async ({ ep, moduleFile, runs, warmup, timingCase, tolerance }) => {
          const { createOrtRanker } = await import('/bench/ort.mjs');
          const [modelBytes, doc] = await Promise.all([
            fetch('/model.onnx').then((r) => r.arrayBuffer()).then((b) => new Uint8Array(b)),
            fetch('/cases.json').then((r) => r.json()),
          ]);
          let adapter = null;
          if (ep === 'webgpu') {
            const a = await navigator.gpu?.requestAdapter();
            adapter = a ? { ...(a.info ? { vendor: a.info.vendor, architecture: a.info.architecture, description: a.info.description } : {}), isFallbackAdapter: a.isFallbackAdapter ?? a.info?.isFallbackAdapter } : null;
          }
          const t0 = performance.now();
          const ranker = await createOrtRanker({ ortModuleUrl: `/ort/${moduleFile}`, modelBytes, executionProvider: ep });
          const coldCreateMs = performance.now() - t0;
          const t1 = performance.now();
          const second = await createOrtRanker({ ortModuleUrl: `/ort/${moduleFile}`, modelBytes, executionProvider: ep });
          const warmCreateMs = performance.now() - t1;
          await second.release();

          const inputsOf = (c) => ({
            L: c.L, N: c.N, T: c.T, T2: c.T2,
            eventRows: BigInt64Array.from(c.eventRows, BigInt),
            eventKinds: BigInt64Array.from(c.eventKinds, BigInt),
            eventTokens: BigInt64Array.from(c.eventTokens, BigInt),
            eventMask: Float32Array.from(c.eventMask),
            candidateRows: BigInt64Array.from(c.candidateRows, BigInt),
            candidateTokens: BigInt64Array.from(c.candidateTokens, BigInt),
            candidateMask: Float32Array.from(c.candidateMask),
            affinityWeights: Float32Array.from(c.affinityWeights),
          });
          const perCase = [];
          let firstScoreMs = null;
          for (const c of doc.cases) {
            const inputs = inputsOf(c);
            const t = performance.now();
            const scores = await ranker.score(inputs);
            if (firstScoreMs === null) firstScoreMs = performance.now() - t;
            let maxDiff = scores.length === c.N ? 0 : Infinity;
            for (let i = 0; i < c.N; i++) {
              const d = Math.abs(scores[i] - c.expectedScores[i]);
              maxDiff = Number.isFinite(d) ? Math.max(maxDiff, d) : Infinity;
            }
            perCase.push({ name: c.name, L: c.L, N: c.N, maxDiff, ok: maxDiff <= tolerance });
          }

          const timed = doc.cases.find((c) => c.name === timingCase);
          const inputs = inputsOf(timed);
          for (let i = 0; i < warmup; i++) await ranker.score(inputs);
          const inOrder = [];
          for (let i = 0; i < runs; i++) {
            const t = performance.now();
            await ranker.score(inputs);
            inOrder.push(performance.now() - t);
          }
          const times = [...inOrder].sort((a, b) => a - b);
          const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
          await ranker.release();
          return {
            ep,
            moduleFile,
            adapter,
            numThreads: ranker.numThreads,
            crossOriginIsolated: globalThis.crossOriginIsolated,
            coldCreateMs,
            warmCreateMs,
            firstScoreMs,
            perCase,
            maxDiff: Math.max(...perCase.map((c) => c.maxDiff)),
            timing: { case: timingCase, L: timed.L, N: timed.N, warmup, runs, inOrderMs: inOrder, p50Ms: q(0.5), p90Ms: q(0.9), minMs: times[0], maxMs: times[times.length - 1] },
          };
        },
        { ep, moduleFile: args.module ?? MODULE_FOR[ep], runs: RUNS, warmup: WARMUP, timingCase: args['timing-case'], tolerance: TOLERANCE },
      );
    } catch (error) {
      result = { ep, error: String(error?.message ?? error).split('\n')[0] };
      failed = true;
    }
    result.fetchedFromDist = [...fetched].sort();
    result.console = consoleLines.filter((l) => !l.startsWith('debug')).slice(0, 20);
    if (result.maxDiff !== undefined && !(result.maxDiff <= TOLERANCE)) failed = true;
    report.results.push(result);
    if (args.verbose) console.log(JSON.stringify(result, null, 1));
    await page.close();
  }
} finally {
  await browser.close();
  await server.close();
  rmSync(userDataDir, { recursive: true, force: true });
  rmSync(site, { recursive: true, force: true });
}
if (args.json) writeFileSync(args.json, JSON.stringify(report, null, 1));
for (const r of report.results) {
  if (r.error) {
    console.log(`${r.ep}: FAILED: ${r.error}; fetched from dist/: ${r.fetchedFromDist.join(', ')}`);
    for (const line of r.console) console.log(`  ${line}`);
    continue;
  }
  const adapter = r.adapter ? ` on ${[r.adapter.vendor, r.adapter.architecture, r.adapter.description].filter(Boolean).join(' ') || 'an unnamed adapter'}${r.adapter.isFallbackAdapter ? ' (fallback adapter)' : ''}` : '';
  console.log(
    `${r.ep}${adapter} (onnxruntime-web ${ortVersion} ${r.moduleFile}, ${r.numThreads} thread, crossOriginIsolated ${r.crossOriginIsolated}): ` +
      `max |diff| ${r.maxDiff.toExponential(2)} over ${r.perCase.length} cases (${r.maxDiff <= TOLERANCE ? 'OK' : 'FAIL'})\n` +
      `  cold create ${r.coldCreateMs.toFixed(1)} ms (import + wasm + session), warm create ${r.warmCreateMs.toFixed(1)} ms, first score ${r.firstScoreMs.toFixed(1)} ms\n` +
      `  score L=${r.timing.L} N=${r.timing.N}: p50 ${r.timing.p50Ms.toFixed(2)} ms (min ${r.timing.minMs.toFixed(2)}, p90 ${r.timing.p90Ms.toFixed(2)}, max ${r.timing.maxMs.toFixed(2)}) over ${r.timing.runs} runs after ${r.timing.warmup} warm-up runs\n` +
      `  fetched from dist/: ${r.fetchedFromDist.join(', ')}`,
  );
}
process.exit(failed ? 1 : 0);
