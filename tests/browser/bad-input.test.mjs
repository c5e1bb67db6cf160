// Bad input from a storefront, through the packed package in headless
// Chromium: every malformed candidate list, option or event gets a typed
// error (rerankStrict rejects with a named error; rerank resolves with the
// server's order and `fallback: true`), and nothing escapes into the page.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startSite } from './harness.mjs';

let site;
let page;
before(async () => {
  site = await startSite();
  page = await site.openPage();
  await page.evaluate(async () => {
    const errors = [];
    window.reported = errors;
    window.ranker = await window.shelfrank.loadReranker({
      backend: 'cpu',
      persist: false,
      budgetMs: 0,
      onError: (error) => errors.push(error.name),
    });
    for (const item of window.catalog.slice(30, 36)) window.ranker.record({ type: 'view', id: item.id, title: item.title });
  });
});
after(async () => {
  await site?.close();
});

/** Runs `build()` (a page function returning a candidate list) through rerankStrict and rerank. */
async function outcome(build, options = {}) {
  return page.evaluate(
    async ({ source, options }) => {
      const list = (0, eval)(`(${source})`)(window.catalog);
      const strict = await window.ranker.rerankStrict(list, options).then(
        (ranking) => ({ ok: true, order: ranking.map((r) => r.originalPosition), scores: ranking.map((r) => r.score) }),
        (error) => ({ ok: false, name: error.name, message: error.message }),
      );
      const soft = await window.ranker.rerank(list, options);
      const same = Array.isArray(list) && soft.items.length === list.length && soft.items.every((item, i) => item === list[i]);
      return { strict, soft: { fallback: soft.fallback, error: soft.error?.name, serverOrder: same, length: soft.items.length } };
    },
    { source: build.toString(), options },
  );
}

const CASES = [
  // [name, list builder, expected error name or null when it must rank]
  ['an empty list', () => [], null],
  ['10,000 candidates', (catalog) => Array.from({ length: 10_000 }, (_, i) => ({ id: `c${i}`, title: catalog[i % catalog.length].title })), null],
  ['10,001 candidates', () => Array.from({ length: 10_001 }, (_, i) => ({ id: `c${i}`, title: 'x' })), 'InvalidCandidateError'],
  ['duplicate ids', () => [{ id: 'a', title: 'one' }, { id: 'b' }, { id: 'a', title: 'two' }], 'InvalidCandidateError'],
  ['a missing id', () => [{ id: 'a' }, { title: 'no id' }], 'InvalidCandidateError'],
  ['a numeric id', () => [{ id: 'a' }, { id: 7, title: 'number' }], 'InvalidCandidateError'],
  ['a null id', () => [{ id: 'a' }, { id: null }], 'InvalidCandidateError'],
  ['an empty id', () => [{ id: 'a' }, { id: '  ' }], 'InvalidCandidateError'],
  ['an id over 1 KB', () => [{ id: 'a' }, { id: 'x'.repeat(5000) }], 'InvalidCandidateError'],
  ['a NaN server score', () => [{ id: 'a', serverScore: 1 }, { id: 'b', serverScore: NaN }], 'InvalidCandidateError'],
  ['an infinite server score', () => [{ id: 'a', serverScore: Infinity }, { id: 'b', serverScore: 1 }], 'InvalidCandidateError'],
  ['negative server scores', (catalog) => catalog.slice(0, 20).map((c, i) => ({ id: c.id, title: c.title, serverScore: -i - 0.5 })), null],
  ['a string server score', () => [{ id: 'a', serverScore: '3' }, { id: 'b' }], 'InvalidCandidateError'],
  ['a negative price', () => [{ id: 'a', price: -1 }, { id: 'b' }], 'InvalidCandidateError'],
  ['1 MB titles', (catalog) => catalog.slice(0, 50).map((c) => ({ id: c.id, title: `${c.title} ${'lorem ipsum '.repeat(90_000)}` })), null],
  ['a huge request: 10,000 candidates with 1 MB titles each', (catalog) => {
    const huge = 'lorem ipsum dolor '.repeat(60_000);
    // One shared 1 MB string: the page holds 1 MB, the request "carries" 20 GB.
    return Array.from({ length: 10_000 }, (_, i) => ({ id: `h${i}`, title: huge, category: huge, brand: catalog[i % catalog.length].brand ?? undefined }));
  }, null],
  ['1 MB categories and brands', () => [{ id: 'a', title: 't', category: 'c'.repeat(1 << 20), brand: 'b'.repeat(1 << 20) }, { id: 'b' }], null],
  ['lone UTF-16 surrogates in titles', () => [{ id: 'a', title: 'gloves \uD800 nitrile' }, { id: 'b', title: '\uDFFF\uD83D' }, { id: 'c' }], null],
  ['lone surrogates in ids', () => [{ id: 'a\uD800' }, { id: 'b\uDC00' }, { id: 'c' }], null],
  ['non-object entries', () => [{ id: 'a' }, 42, 'b', null], 'InvalidCandidateError'],
  ['an array entry', () => [{ id: 'a' }, ['b']], 'InvalidCandidateError'],
  ['a list that is not an array', () => ({ 0: { id: 'a' }, length: 1 }), 'InvalidCandidateError'],
  ['a non-boolean pinned', () => [{ id: 'a' }, { id: 'b', pinned: 'yes' }], 'InvalidCandidateError'],
  ['every item pinned', (catalog) => catalog.slice(0, 5).map((c) => ({ id: c.id, title: c.title, pinned: true })), null],
  ['unknown extra fields (forward compatibility)', (catalog) => catalog.slice(0, 5).map((c) => ({ ...c, rating: 4.5, tags: ['x'], nested: { deep: [1] } })), null],
  ['a getter that throws', () => [{ id: 'a' }, Object.defineProperty({}, 'id', { get() { throw new Error('boom'); }, enumerable: true })], 'InvalidCandidateError'],
];

for (const [name, build, expected] of CASES) {
  test(`candidates: ${name} ${expected ? `→ ${expected} and the server order` : 'are ranked'}`, async () => {
    const result = await outcome(build);
    if (expected) {
      assert.equal(result.strict.ok, false, `rerankStrict should reject ${name}`);
      assert.equal(result.strict.name, expected, result.strict.message);
      assert.ok(result.strict.message.length > 10, 'the error says what is wrong');
      assert.equal(result.soft.fallback, true);
      assert.equal(result.soft.error, expected);
      assert.ok(result.soft.serverOrder || result.soft.length === 0, 'the server order is returned');
    } else {
      assert.equal(result.strict.ok, true, `${name}: ${result.strict.name}: ${result.strict.message}`);
      assert.ok(result.strict.scores.every(Number.isFinite), 'finite scores');
      assert.deepEqual([...result.strict.order].sort((a, b) => a - b), result.strict.order.map((_, i) => i), 'a permutation');
      assert.equal(result.soft.fallback, false, result.soft.error);
    }
    assert.deepEqual(site.pageErrors, [], 'nothing escaped into the page');
  });
}

test('pinned items keep their slots wherever they are, first and last included', async () => {
  const result = await page.evaluate(async () => {
    const list = window.catalog.slice(100, 130).map((c, i) => ({ id: c.id, title: c.title, pinned: i === 0 || i === 7 || i === 29 }));
    const ranking = await window.ranker.rerankStrict(list, { serverWeight: 0 });
    return ranking.map((r, slot) => ({ slot, from: r.originalPosition, pinned: r.pinned }));
  });
  for (const r of result.filter((r) => r.pinned)) assert.equal(r.from, r.slot);
  assert.ok(result.some((r) => !r.pinned && r.from !== r.slot), 'the free items did move');
});

test('options: an out-of-range or non-numeric serverWeight is a typed error', async () => {
  for (const serverWeight of [2, -0.1, 'half', NaN]) {
    const result = await outcome((catalog) => catalog.slice(0, 5), { serverWeight });
    assert.equal(result.strict.ok, false, `serverWeight ${serverWeight}`);
    assert.equal(result.strict.name, 'InvalidOptionError', result.strict.message);
    assert.equal(result.soft.fallback, true);
  }
});

test('events: unknown types and malformed events are refused with a typed error; timestamps are clamped or expire', async () => {
  const result = await page.evaluate(async () => {
    const ranker = await window.shelfrank.loadReranker({ backend: 'cpu', persist: false });
    const errors = [];
    const watched = await window.shelfrank.loadReranker({ backend: 'cpu', persist: false, onError: (e) => errors.push(e.name) });
    const refused = [
      watched.record({ type: 'teleport', id: 'x' }),
      watched.record(null),
      watched.record('view'),
      watched.record({ id: 'x' }),
    ];
    watched.record({ type: 'view' }); // no id and no title
    watched.record({ type: 'search', query: '   ' }); // empty query
    watched.record({ type: 'view', id: 'ok-1', title: 'Gloves', extra: { anything: true } }); // extra fields are ignored
    watched.record({ type: 'view', id: 'future', title: 'Goggles', timestamp: Date.now() + 365 * 864e5 });
    watched.record({ type: 'view', id: 'ancient', title: 'Tape', timestamp: 0 });
    watched.record({ type: 'view', id: 'nan-time', title: 'Tape', timestamp: NaN });
    const history = await watched.history();
    ranker.destroy();
    watched.destroy();
    return { refused, errors, history: history.map((e) => ({ id: e.id, timestamp: e.timestamp })), now: Date.now() };
  });
  assert.deepEqual(result.refused, [false, false, false, false]);
  assert.ok(result.errors.filter((n) => n === 'InvalidEventError').length >= 6, result.errors.join(', '));
  const ids = result.history.map((e) => e.id);
  // (The future one is clamped to the worker's "now", so it may sort last.)
  assert.deepEqual([...ids].sort(), ['future', 'nan-time', 'ok-1'], 'the ancient event expired at once; the NaN time became "now"');
  assert.ok(result.history.every((e) => e.timestamp <= result.now), 'a future timestamp is clamped to now');
  assert.deepEqual(site.pageErrors, []);
});

test('a flood of 100,000 events keeps the history bounded and memory flat', async () => {
  const result = await page.evaluate(async () => {
    const ranker = await window.shelfrank.loadReranker({ backend: 'cpu', persist: false, history: { maxEvents: 200 } });
    const flood = async (from, to) => {
      for (let i = from; i < to; i++) {
        const item = window.catalog[i % window.catalog.length];
        ranker.record({ type: i % 7 === 0 ? 'search' : 'view', id: item.id, title: item.title, query: `query ${i}` });
        if (i % 5000 === 4999) await ranker.history(); // let the worker keep up
      }
      await ranker.history();
      return ranker.stats();
    };
    const afterTenThousand = await flood(0, 10_000);
    const afterHundredThousand = await flood(10_000, 100_000);
    const list = window.catalog.slice(0, 100);
    const ranked = await ranker.rerank(list, { budgetMs: 0 });
    ranker.destroy();
    return { afterTenThousand, afterHundredThousand, fallback: ranked.fallback };
  });
  assert.equal(result.afterTenThousand.historyLength, 200);
  assert.equal(result.afterHundredThousand.historyLength, 200);
  assert.equal(result.afterHundredThousand.wasmMemoryBytes, result.afterTenThousand.wasmMemoryBytes, 'the wasm memory did not grow from 10k to 100k events');
  assert.equal(result.fallback, false);
});

test('events with extra fields that cannot be copied (a DOM node, a function) are recorded with their known fields; attach(null) does not throw', async () => {
  const result = await page.evaluate(async () => {
    const errors = [];
    const ranker = await window.shelfrank.loadReranker({ backend: 'cpu', persist: false, onError: (e) => errors.push(e.name) });
    const item = window.catalog[3];
    const recorded = ranker.record({ type: 'view', id: item.id, title: item.title, element: document.body, onClick() {} });
    const history = await ranker.history();
    let threw = null;
    let handle;
    try {
      handle = ranker.attach(null);
      await handle.refresh();
      handle.restore();
      handle.detach();
    } catch (error) {
      threw = error.name;
    }
    ranker.destroy();
    return { recorded, ids: history.map((e) => e.id), keys: history.map((e) => Object.keys(e).sort()), threw, errors };
  });
  assert.equal(result.recorded, true);
  assert.equal(result.ids.length, 1);
  assert.ok(!result.keys[0].includes('element') && !result.keys[0].includes('onClick'), result.keys[0].join());
  assert.equal(result.threw, null);
  assert.deepEqual(result.errors, ['InvalidOptionError']);
  assert.deepEqual(site.pageErrors, []);
});
