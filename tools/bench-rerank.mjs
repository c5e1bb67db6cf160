// Prints, per backend, load time, first and warm rerank time of 100 catalog
// candidates after 20 recorded events, in a worker and on the page thread,
// in headless Chromium on the packed
// package. A measurement, not a test: `node tools/bench-rerank.mjs`.
import { startSite } from '../tests/browser/harness.mjs';

const site = await startSite();
try {
  for (const [backend, worker] of [['cpu', true], ['cpu', false], ['webgpu', true]]) {
    const page = await site.openPage();
    const result = await page.evaluate(async ({ backend, worker }) => {
      const t0 = performance.now();
      const ranker = await window.shelfrank.loadReranker({ backend, worker, persist: false, budgetMs: 0 });
      const loadMs = performance.now() - t0;
      const items = window.catalog;
      for (let i = 0; i < 20; i++) {
        const item = items[(i * 37) % items.length];
        ranker.record({ type: i % 3 ? 'view' : 'add_to_cart', id: item.id, title: item.title, category: item.category, brand: item.brand });
      }
      const candidates = items.slice(1000, 1100);
      const t1 = performance.now();
      const first = await ranker.rerank(candidates);
      const firstMs = performance.now() - t1;
      const warm = [];
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        await ranker.rerank(candidates);
        warm.push(performance.now() - t);
      }
      warm.sort((a, b) => a - b);
      return { backend: ranker.backend, worker, loadMs, firstMs, warmP50Ms: warm[10], warmMinMs: warm[0], fallback: first.fallback };
    }, { backend, worker });
    console.log(JSON.stringify({ candidates: 100, history: 20, ...result }));
    await page.close();
  }
} finally {
  await site.close();
}
