// The built npm package in headless Chromium: both backends, a real
// personalisation effect on real catalog items, and clear errors with
// server-order fallback.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { categoryScenario, root, sequenceScenarios, startSite } from './harness.mjs';

// WebGPU (SwiftShader here) and the CPU backend sum in different orders;
// scores are dot products of 64-wide unit-scale vectors, so agreement to
// 1e-3 absolute is far tighter than the gaps that decide an order.
const SCORE_TOLERANCE = 1e-3;
// The sequence scenario: the next item must beat chance (mean slot 9.5 of
// 0-19; 10 of 40 in the top 5 by chance, 15 required), where text
// likeness alone would put it last.
const SEQUENCE_MEAN_SLOT = 9.5;
const SEQUENCE_TOP5 = 15;

let site;
before(async () => {
  site = await startSite();
});
after(async () => {
  await site?.close();
});

test('the packed package ships the wasm, the shim, its types and the default model, and no dataset', () => {
  const files = site.site.files;
  const shipped = ['www/shelfrank.js', 'www/shelfrank.d.ts', 'www/worker.js', 'www/engine.js', 'www/capture.js', 'www/protocol.js', 'www/host.js', 'www/service-worker.js'];
  for (const needed of [...shipped, 'www/pkg-cpu/shelfrank_bg.wasm', 'www/pkg-cpu/shelfrank.js', 'www/pkg-webgpu/shelfrank_bg.wasm', 'www/pkg-webgpu/shelfrank.js', 'models/manifest.json', 'package.json']) {
    assert.ok(files.includes(needed), `${needed} is missing from the package: ${files.join(', ')}`);
  }
  // The shim names the default model file statically (so bundlers can see
  // it); it must be the one the manifest ships. The model carries its
  // tokenizer: no tokenizer.json is shipped or named.
  const manifest = JSON.parse(readFileSync(path.join(site.site.dir, 'package/models/manifest.json'), 'utf8'));
  const shim = readFileSync(path.join(site.site.dir, 'package/www/shelfrank.js'), 'utf8');
  assert.ok(files.includes(`models/${manifest.model.file}`), `models/${manifest.model.file} is missing`);
  assert.ok(shim.includes(`"../models/${manifest.model.file}"`), `the shim does not load models/${manifest.model.file}`);
  // The shim ships minified (the page's module bundled with the two it
  // imports), with its readable sources and source maps beside it.
  assert.ok(files.includes('www/src/shelfrank.js') && files.includes('www/shelfrank.js.map'), files.join(', '));
  const sources = ['shelfrank.js', 'capture.js', 'protocol.js'].reduce((n, f) => n + readFileSync(path.join(site.site.dir, 'package/www/src', f), 'utf8').length, 0);
  assert.ok(shim.length < sources / 2, 'www/shelfrank.js is not minified');
  assert.ok(!/\bfrom\s*["']\.\/(capture|protocol)\.js["']/.test(shim), 'www/shelfrank.js still imports its neighbours (one request each)');
  assert.ok(!files.some((f) => f.endsWith('tokenizer.json')) && !shim.includes('tokenizer.json'), files.join(', '));
  assert.ok(!files.some((f) => /Scientific\.|\.inter$|catalog\.json$/.test(f)), `the dataset leaked into the package: ${files.join(', ')}`);
});

/** Picks a category with many items and a mixed candidate list (server order). */
function scenario() {
  const { focus, focusItems, others } = categoryScenario(10);
  const viewed = focusItems.slice(0, 5);
  const inList = focusItems.slice(5, 15);
  // Server order: the focus category's items sit in the lower half.
  const candidates = [...others.slice(0, 50), ...inList, ...others.slice(50, 90)].slice(0, 100);
  return { focus, viewed, candidates };
}

async function rerankOn(page, backend, worker = true) {
  return page.evaluate(async ({ backend, worker, scenario }) => {
    const ranker = await window.shelfrank.loadReranker({ backend, persist: false, budgetMs: 0, worker });
    const before = await ranker.rerank(scenario.candidates);
    for (const item of scenario.viewed) {
      ranker.record({ type: 'view', id: item.id, title: item.title, category: item.category, brand: item.brand });
    }
    const afterViews = await ranker.rerank(scenario.candidates);
    return { backendInfo: ranker.backend, focus: scenario.focus, candidates: scenario.candidates, before, after: afterViews };
  }, { backend, worker, scenario: scenario() });
}

function meanPosition(items, category) {
  const slots = items.map((item, slot) => (item.category === category ? slot : null)).filter((s) => s !== null);
  return slots.reduce((a, b) => a + b, 0) / slots.length;
}

let webgpuRun;
let cpuRun;

test('backend "webgpu" runs on a WebGPU adapter and reports it', async () => {
  const page = await site.openPage();
  webgpuRun = await rerankOn(page, 'webgpu');
  assert.equal(webgpuRun.backendInfo.name, 'webgpu');
  assert.ok(webgpuRun.backendInfo.adapter, 'no adapter reported');
  assert.equal(typeof webgpuRun.backendInfo.adapter.isFallback, 'boolean');
  assert.equal(webgpuRun.after.fallback, false, webgpuRun.after.error?.message);
  await page.close();
});

test('backend "cpu" runs on the CPU backend', async () => {
  const page = await site.openPage();
  cpuRun = await rerankOn(page, 'cpu');
  assert.equal(cpuRun.backendInfo.name, 'cpu');
  assert.equal(cpuRun.backendInfo.adapter, undefined);
  assert.equal(cpuRun.after.fallback, false, cpuRun.after.error?.message);
  await page.close();
});

test('WebGPU and CPU give the same order and scores within tolerance', () => {
  assert.ok(webgpuRun && cpuRun, 'both backend runs must have succeeded');
  const gpu = webgpuRun.after.ranking;
  const cpu = cpuRun.after.ranking;
  assert.equal(gpu.length, cpu.length);
  const cpuScore = new Map(cpu.map((r) => [r.id, r.modelScore]));
  for (const r of gpu) {
    const diff = Math.abs(r.modelScore - cpuScore.get(r.id));
    assert.ok(diff <= SCORE_TOLERANCE, `${r.id}: webgpu ${r.modelScore} vs cpu ${cpuScore.get(r.id)}`);
  }
  for (let slot = 0; slot < gpu.length; slot++) {
    if (gpu[slot].id !== cpu[slot].id) {
      // Only a near-tie may swap.
      assert.ok(Math.abs(gpu[slot].score - cpu[slot].score) <= 10 * SCORE_TOLERANCE, `order differs at ${slot}: ${gpu[slot].id} vs ${cpu[slot].id}`);
    }
  }
});

test('viewing items of one category moves that category up versus an empty history', () => {
  for (const run of [cpuRun, webgpuRun]) {
    assert.ok(run, 'the backend run must have succeeded');
    // With no history the server order stays.
    assert.deepEqual(run.before.items.map((i) => i.id), run.candidates.map((i) => i.id));
    const was = meanPosition(run.before.items, run.focus);
    const now = meanPosition(run.after.items, run.focus);
    assert.ok(now < was - 10, `${run.backendInfo.name}: mean position of '${run.focus}' went ${was} → ${now}`);
  }
});

test('items the shopper already bought sink by the learned repeat prior, and compete with repeats: "allow"', async () => {
  const { focusItems, others } = categoryScenario(10);
  const bought = focusItems.slice(0, 3);
  // The bought items sit in the middle of the server's list, among others of their category.
  const candidates = [...others.slice(0, 20), ...bought, ...focusItems.slice(3, 10), ...others.slice(20, 40)];
  const page = await site.openPage();
  const outcome = await page.evaluate(async ({ bought, candidates }) => {
    const ranker = await window.shelfrank.loadReranker({ backend: 'cpu', persist: false, budgetMs: 0 });
    for (const item of bought) {
      ranker.record({ type: 'purchase', id: item.id, title: item.title, category: item.category, brand: item.brand });
    }
    const slots = (result) => bought.map((b) => result.items.findIndex((i) => i.id === b.id));
    const learned = await ranker.rerank(candidates);
    const allowed = await ranker.rerank(candidates, { repeats: 'allow' });
    const invalid = await ranker.rerank(candidates, { repeats: 'sometimes' });
    return {
      learned: slots(learned),
      allowed: slots(allowed),
      fallbacks: [learned.fallback, allowed.fallback],
      invalid: { fallback: invalid.fallback, name: invalid.error?.name, message: invalid.error?.message },
    };
  }, { bought, candidates });
  await page.close();
  assert.deepEqual(outcome.fallbacks, [false, false]);
  const mean = (slots) => slots.reduce((a, b) => a + b, 0) / slots.length;
  // Allowed, what was just bought is most like the history: it rises to the top.
  assert.ok(outcome.allowed.every((slot) => slot < 10), `with repeats: 'allow' the bought items sit at ${outcome.allowed}`);
  // By default the learned prior (shoppers rarely buy the same item again) sinks each of them.
  assert.ok(outcome.learned.every((slot, i) => slot > outcome.allowed[i]), `learned ${outcome.learned} vs allowed ${outcome.allowed}`);
  assert.ok(mean(outcome.learned) > mean(outcome.allowed) + 5, `learned ${outcome.learned} vs allowed ${outcome.allowed}`);
  assert.equal(outcome.invalid.fallback, true);
  assert.equal(outcome.invalid.name, 'InvalidOptionError');
  assert.match(outcome.invalid.message, /repeats|learned|allow/);
});

test('the sequence, not the category, decides: an item’s frequent next item from another category rises above 19 look-alikes of the item', async () => {
  const scenarios = sequenceScenarios(40);
  assert.equal(scenarios.length, 40);
  const page = await site.openPage();
  const slots = await page.evaluate(async (scenarios) => {
    const ranker = await window.shelfrank.loadReranker({ backend: 'cpu', persist: false, budgetMs: 0 });
    const out = [];
    for (const { history, list, target } of scenarios) {
      await ranker.forget();
      for (const item of history) ranker.record({ type: 'purchase', id: item.id, title: item.title, category: item.category, brand: item.brand });
      const result = await ranker.rerank(list, { serverWeight: 0 });
      out.push(result.fallback ? -1 : result.items.findIndex((i) => i.id === target));
    }
    return out;
  }, scenarios);
  await page.close();
  assert.ok(!slots.includes(-1), `a rerank fell back: ${slots}`);
  // Text likeness alone ranks the odd one out last, slot 19; chance gives 9.5 on average.
  const mean = slots.reduce((a, b) => a + b, 0) / slots.length;
  const top5 = slots.filter((s) => s < 5).length;
  assert.ok(mean < SEQUENCE_MEAN_SLOT, `mean slot of the next item ${mean.toFixed(2)} (slots ${slots})`);
  assert.ok(top5 >= SEQUENCE_TOP5, `the next item was in the top 5 for ${top5} of 40 users`);
});

test('a corrupted model file is rejected with a clear error', async () => {
  const page = await site.openPage();
  const outcome = await page.evaluate(async () => {
    const { modelUrl } = await window.shelfrank.defaultModelUrls();
    const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
    bytes[bytes.length >> 1] ^= 0x40;
    const url = URL.createObjectURL(new Blob([bytes]));
    try {
      await window.shelfrank.loadReranker({ modelUrl: url, backend: 'cpu', persist: false });
      return { loaded: true };
    } catch (error) {
      return { loaded: false, name: error.name, message: error.message };
    }
  });
  assert.equal(outcome.loaded, false);
  assert.equal(outcome.name, 'ModelFileError');
  assert.match(outcome.message, /corrupted|sha256/);
  await page.close();
});

test('a model file the server refuses (404) is reported as such, asked for once', async () => {
  const page = await site.openPage();
  const asked = [];
  const count = (request) => request.url().includes('/no-such-model-') && asked.push(request.url());
  site.browser.on('request', count);
  const outcome = await page.evaluate(async () => {
    const { modelUrl } = await window.shelfrank.defaultModelUrls();
    const url = new URL(`no-such-model-${Date.now()}.bin`, modelUrl).href;
    try {
      await window.shelfrank.loadReranker({ modelUrl: url, backend: 'cpu', persist: false });
      return { loaded: true };
    } catch (error) {
      return { loaded: false, name: error.name, message: error.message };
    }
  });
  site.browser.off('request', count);
  assert.equal(outcome.loaded, false);
  assert.equal(outcome.name, 'FetchError');
  assert.match(outcome.message, /HTTP 404/);
  assert.equal(asked.length, 1, `the model was asked for ${asked.length} times: ${asked.join(', ')}`);
  await page.close();
});

test('an invalid candidate gives a clear error, and rerank falls back to server order without throwing', async () => {
  const page = await site.openPage();
  const outcome = await page.evaluate(async () => {
    const ranker = await window.shelfrank.loadReranker({ backend: 'cpu', persist: false, budgetMs: 0 });
    const item = window.catalog[0];
    ranker.record({ type: 'view', id: item.id, title: item.title });
    const list = [
      { id: 'a', title: 'Nitrile gloves' },
      { title: 'no id here' },
      { id: 'c', title: 'Safety glasses' },
    ];
    let strict;
    try {
      await ranker.rerankStrict(list);
      strict = { rejected: false };
    } catch (error) {
      strict = { rejected: true, name: error.name, message: error.message };
    }
    const duplicate = await ranker.rerank([{ id: 'x', title: 'one' }, { id: 'x', title: 'two' }]);
    const soft = await ranker.rerank(list);
    return {
      strict,
      soft: { fallback: soft.fallback, order: soft.items.map((i) => i.title), name: soft.error?.name },
      duplicate: { fallback: duplicate.fallback, message: duplicate.error?.message },
      badEvent: ranker.record({ type: 'teleport', id: 'x' }),
    };
  });
  assert.equal(outcome.strict.rejected, true);
  assert.equal(outcome.strict.name, 'InvalidCandidateError');
  assert.match(outcome.strict.message, /id/);
  assert.equal(outcome.soft.fallback, true);
  assert.equal(outcome.soft.name, 'InvalidCandidateError');
  assert.deepEqual(outcome.soft.order, ['Nitrile gloves', 'no id here', 'Safety glasses']);
  assert.equal(outcome.duplicate.fallback, true);
  assert.match(outcome.duplicate.message, /repeats the id 'x'/);
  assert.equal(outcome.badEvent, false);
  assert.deepEqual(site.pageErrors, [], 'no error escaped into the page');
  await page.close();
});

test('the same list sent again is reranked from the ranker’s own copy, under the history as it is now; a changed list is sent whole', async () => {
  const page = await site.openPage();
  const outcome = await page.evaluate(async () => {
    // The page-thread engine imports this very module: count how each rerank reached the wasm.
    const { Ranker } = await import('/package/www/pkg-cpu/shelfrank.js');
    const calls = { packed: 0, last: 0 };
    for (const [name, key] of [['rerankPacked', 'packed'], ['rerankLast', 'last']]) {
      const original = Ranker.prototype[name];
      Ranker.prototype[name] = function (...args) {
        calls[key]++;
        return original.apply(this, args);
      };
    }
    const made = () => window.shelfrank.loadReranker({ backend: 'cpu', worker: false, persist: false, budgetMs: 0 });
    const ranker = await made();
    const fresh = await made();
    const items = window.catalog.slice(300, 340);
    const list = () => items.map((item, i) => ({ id: item.id, title: item.title, category: item.category ?? undefined, serverScore: 40 - i }));
    const view = (r, item) => r.record({ type: 'view', id: item.id, title: item.title, category: item.category ?? undefined });
    const scores = (result) => result.ranking.map((r) => [r.id, r.score]);
    const step = async (what) => {
      const before = { ...calls };
      const result = await what();
      if (result.fallback) throw result.error;
      return { scores: scores(result), packed: calls.packed - before.packed, last: calls.last - before.last };
    };
    for (const r of [ranker, fresh]) view(r, window.catalog[10]);
    const first = await step(() => ranker.rerank(list()));
    const again = await step(() => ranker.rerank(list()));
    // A new event: the same list, scored under the longer history.
    for (const r of [ranker, fresh]) view(r, window.catalog[2000]);
    const afterEvent = await step(() => ranker.rerank(list()));
    const freshAfterEvent = await step(() => fresh.rerank(list()));
    // One title changed, same ids: the whole list must go again.
    const changed = list();
    changed[5] = { ...changed[5], title: 'Replacement nitrile gloves, box of 100' };
    const edited = await step(() => ranker.rerank(changed));
    const freshEdited = await step(() => fresh.rerank(changed));
    // Another list in between (as another page of a shared engine would send): the first is sent again.
    await step(() => ranker.rerank(list().slice(0, 10)));
    const back = await step(() => ranker.rerank(changed));
    return { first, again, afterEvent, freshAfterEvent, edited, freshEdited, back };
  });
  const close = (a, b, what) => {
    assert.equal(a.length, b.length, what);
    a.forEach(([id, score], i) => {
      assert.equal(id, b[i][0], `${what}: the same order`);
      assert.ok(Math.abs(score - b[i][1]) < 1e-5, `${what}: ${id} ${score} against ${b[i][1]}`);
    });
  };
  assert.deepEqual([outcome.first.packed, outcome.first.last], [1, 0], 'a first list is sent whole');
  assert.deepEqual([outcome.again.packed, outcome.again.last], [0, 1], 'the same list again is not copied');
  close(outcome.again.scores, outcome.first.scores, 'the same list, the same history');
  assert.deepEqual([outcome.afterEvent.packed, outcome.afterEvent.last], [0, 1]);
  close(outcome.afterEvent.scores, outcome.freshAfterEvent.scores, 'after a new event, as a ranker that never saw the list');
  assert.notDeepEqual(outcome.afterEvent.scores, outcome.first.scores, 'the new event changed the scores');
  assert.deepEqual([outcome.edited.packed, outcome.edited.last], [1, 0], 'a changed title sends the list whole');
  close(outcome.edited.scores, outcome.freshEdited.scores, 'a changed list, as a ranker that never saw the old one');
  assert.deepEqual([outcome.back.packed, outcome.back.last], [1, 0], 'after another list, the list is sent whole again');
  close(outcome.back.scores, outcome.edited.scores, 'and ranked as before');
  assert.deepEqual(site.pageErrors, [], 'no error escaped into the page');
  await page.close();
});

test('the engine on the page thread (worker: false) ranks exactly like the worker', async () => {
  assert.ok(cpuRun, 'the CPU run must have succeeded');
  const page = await site.openPage();
  const local = await rerankOn(page, 'cpu', false);
  assert.equal(local.after.fallback, false, local.after.error?.message);
  assert.deepEqual(local.after.ranking, cpuRun.after.ranking);
  await page.close();
});

test('backend "auto" with only a software WebGPU adapter runs the CPU build and never downloads the WebGPU build', async () => {
  const page = await site.openPage();
  const fetched = [];
  page.on('request', (r) => fetched.push(new URL(r.url()).pathname));
  const outcome = await page.evaluate(async () => {
    const ranker = await window.shelfrank.loadReranker({ persist: false, budgetMs: 0 });
    const item = window.catalog[0];
    ranker.record({ type: 'view', id: item.id, title: item.title });
    const result = await ranker.rerank(window.catalog.slice(10, 30));
    return { backend: ranker.backend, calibration: await ranker.calibration(), fallback: result.fallback };
  });
  assert.equal(outcome.backend.name, 'cpu');
  assert.match(outcome.backend.reason, /software fallback/);
  assert.equal(outcome.calibration, null);
  assert.equal(outcome.fallback, false);
  assert.ok(fetched.some((p) => p.includes('/pkg-cpu/')), fetched.join('\n'));
  // Only the WebGPU build's small JS glue is loaded (statically, so every bundler can emit one worker chunk), never its wasm.
  const webgpuWasm = fetched.filter((p) => p.includes('/pkg-webgpu/') && p.endsWith('.wasm'));
  assert.deepEqual(webgpuWasm, [], `the WebGPU build was fetched: ${webgpuWasm.join(', ')}`);
  await page.close();
});

test('with a GPU adapter, "auto" measures WebGPU against the CPU in the background and keeps the faster (the software adapter here loses)', async () => {
  const page = await site.openPage();
  const outcome = await page.evaluate(async () => {
    // allowFallbackAdapter: let the calibration run against SwiftShader, the only adapter here.
    const ranker = await window.shelfrank.loadReranker({ persist: false, budgetMs: 0, allowFallbackAdapter: true });
    const servedFirst = ranker.backend;
    const item = window.catalog[0];
    ranker.record({ type: 'view', id: item.id, title: item.title });
    const during = await ranker.rerank(window.catalog.slice(10, 30)); // served by the CPU while WebGPU is measured
    const verdict = await ranker.calibration();
    const after = await ranker.rerank(window.catalog.slice(10, 30));
    return { servedFirst, verdict, backend: ranker.backend, during: during.fallback, after: after.fallback, same: JSON.stringify(during.ranking) === JSON.stringify(after.ranking) };
  });
  assert.equal(outcome.servedFirst.name, 'cpu');
  assert.match(outcome.servedFirst.reason, /measured/);
  assert.ok(outcome.verdict, 'a verdict');
  assert.ok(outcome.verdict.cpuMs > 0 && outcome.verdict.gpuMs > 0, JSON.stringify(outcome.verdict));
  console.error(`calibration on this machine: CPU ${outcome.verdict.cpuMs.toFixed(1)} ms vs WebGPU (SwiftShader) ${outcome.verdict.gpuMs.toFixed(1)} ms`);
  assert.equal(outcome.verdict.choice, 'cpu');
  assert.equal(outcome.backend.name, 'cpu');
  assert.match(outcome.backend.reason, /measured faster than WebGPU/);
  assert.equal(outcome.during, false);
  assert.equal(outcome.after, false);
  assert.ok(outcome.same, 'the same ranking before and after the calibration');
  await page.close();
});

test('a shop’s own model from `train` (its ID table int4) loads from modelUrl and ranks alike on the CPU and WebGPU', async () => {
  // Trained here on the shop fixture (real REES46 rows), as a shop would.
  const shop = path.join(root, 'tests/fixtures/shop');
  execFileSync('cargo', ['build', '--quiet', '--profile', 'native-test', '--bin', 'train'], { cwd: root, stdio: 'inherit' });
  const out = path.join(site.site.dir, 'shop/shelfrank.bin');
  execFileSync(path.join(root, 'target/native-test/train'), [
    '--events', path.join(shop, 'events.csv'), '--catalog', path.join(shop, 'catalog.csv'),
    '--dim', '16', '--epochs', '3', '--no-manifest', '--out', out,
  ], { cwd: root, stdio: 'ignore' });
  const bytes = readFileSync(out);
  const header = JSON.parse(bytes.subarray(48, 48 + bytes.readUInt32LE(44)).toString('utf8'));
  assert.equal(header.tensors.find((t) => t.name === 'item_ids.weight').storedAs, 'i4f16');
  const rows = readFileSync(path.join(shop, 'catalog.csv'), 'utf8').trim().split('\n').slice(1).map((line) => line.split(','));
  const items = rows.map(([id, title, category, brand]) => ({ id, title: title || undefined, category: category || undefined, brand: brand || undefined }));
  const page = await site.openPage();
  const runs = {};
  for (const backend of ['cpu', 'webgpu']) {
    runs[backend] = await page.evaluate(async ({ backend, items }) => {
      const ranker = await window.shelfrank.loadReranker({ modelUrl: '/shop/shelfrank.bin', backend, persist: false, budgetMs: 0 });
      for (const item of items.slice(0, 4)) ranker.record({ type: 'view', ...item });
      const result = await ranker.rerank(items.slice(100, 160));
      return { backend: ranker.backend.name, fallback: result.fallback, error: result.error?.message, ranking: result.ranking };
    }, { backend, items });
    assert.equal(runs[backend].backend, backend);
    assert.equal(runs[backend].fallback, false, runs[backend].error);
    assert.equal(runs[backend].ranking.length, 60);
  }
  const cpuScore = new Map(runs.cpu.ranking.map((r) => [r.id, r.modelScore]));
  for (const r of runs.webgpu.ranking) {
    assert.ok(Math.abs(r.modelScore - cpuScore.get(r.id)) <= SCORE_TOLERANCE, `${r.id}: webgpu ${r.modelScore} vs cpu ${cpuScore.get(r.id)}`);
  }
  await page.close();
});
