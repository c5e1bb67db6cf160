// Compiled by tests/browser/types.test.mjs with `tsc --strict --noEmit`:
// every public API a storefront uses, typed, plus misuses that must not
// compile (each `@ts-expect-error` fails the build if the line compiles).
import {
  createReranker,
  defaultModelUrls,
  loadReranker,
  type AttachedList,
  type BackendInfo,
  type Candidate,
  type ExportedHistory,
  type Metrics,
  type RankerStats,
  type RankedItem,
  type RerankResult,
  type SessionEvent,
} from '../../www/shelfrank.js';

interface ShopItem extends Candidate {
  sku: string;
}

export async function storefront(list: HTMLElement): Promise<void> {
  const metrics: Metrics[] = [];
  const shelf = createReranker({
    backend: 'auto',
    worker: true,
    serviceWorker: true,
    budgetMs: 40,
    loadWaitMs: 2000,
    consent: 'required',
    respectPrivacySignals: true,
    persist: true,
    storageName: 'my-shop',
    history: { maxEvents: 100, maxAgeMs: 7 * 24 * 3600 * 1000 },
    dataLayer: [],
    captureDom: { root: document, viewDwellMs: 1500 },
    onMetrics: (m) => {
      metrics.push(m);
      if (m.type === 'rerank') console.log(m.ms, m.fallback, m.reason, m.candidates);
      if (m.type === 'fallback') console.log(m.from, m.to, m.error);
      if (m.type === 'load') console.log(m.afterCrash === true);
    },
    onError: (e: Error) => console.warn(e.name),
  });
  const backend: BackendInfo = await shelf.ready;
  console.log(backend.name, backend.adapter?.isFallback, shelf.status, shelf.recording, shelf.modelInfo);
  await shelf.setConsent(true);

  const event: SessionEvent = { type: 'add_to_cart', id: 'B00004Z4B7', title: 'Epoxy', timestamp: Date.now() };
  const recorded: boolean = shelf.record(event);
  shelf.record({ type: 'search', query: 'epoxy' });

  const items: ShopItem[] = [{ id: 'a', title: 'A', sku: 'x', serverScore: 2 }, { id: 'b', pinned: true, sku: 'y' }];
  const result: RerankResult<ShopItem> = await shelf.rerank(items, { surface: 'search', budgetMs: 30, serverWeight: 0.3, explain: true, repeats: 'allow' });
  const skus: string[] = result.items.map((i) => i.sku);
  const ranking: RankedItem[] | null = result.ranking;
  const why: string | null = ranking ? shelf.explain(ranking[0]) : null;
  const reasonType = ranking?.[0].reason?.type;
  if (result.fallback) console.log(result.error?.name);

  const strict: RankedItem[] = await shelf.rerankStrict(items);
  const handle: AttachedList = shelf.attach(list, {
    surface: 'recommendations',
    query: 'epoxy',
    explain: true,
    itemSelector: 'li',
    onRerank: (r) => console.log(r.items.map((c) => c.element.tagName)),
  });
  await handle.refresh();
  handle.restore();
  handle.detach();
  console.log(handle.lastResult?.ms, handle.element);

  const history: SessionEvent[] = await shelf.history();
  const stats: RankerStats | null = await shelf.stats();
  console.log(stats?.historyLength, stats?.wasmMemoryBytes, stats?.backend);
  const exported: ExportedHistory = await shelf.exportHistory();
  await shelf.forget();
  shelf.destroy();
  const loaded = await loadReranker({ worker: false });
  // esbuild, Rollup: the package's folder copied to dist/shelfrank (README), then served at /shelfrank/.
  const bundled = createReranker({ packageUrl: '/shelfrank/' });
  createReranker({ packageUrl: new URL('https://shop.example/static/shelfrank/'), onMetrics: (m) => m.type === 'fallback' && m.to === 'page' });
  bundled.destroy();
  const urls: { modelUrl: string } = defaultModelUrls();
  console.log(recorded, skus, why, reasonType, strict, history, exported.events.length, loaded.status, urls);

  // @ts-expect-error: not an event type
  shelf.record({ type: 'teleport', id: 'x' });
  // @ts-expect-error: a surface is required
  shelf.attach(list, {});
  // @ts-expect-error: repeats is 'learned' or 'allow'
  shelf.attach(list, { surface: 'recommendations', repeats: 'never' });
  // @ts-expect-error: consent is 'required' or 'not-required'
  createReranker({ consent: 'maybe' });
  // @ts-expect-error: packageUrl is a URL, not a flag
  createReranker({ packageUrl: true });
  // @ts-expect-error: rerank resolves, it does not return items synchronously
  const wrong: ShopItem[] = shelf.rerank(items).items;
  console.log(wrong);
}
