// The benchmark page: times shelfrank (as a shop page sees it: worker,
// messages, ordering) and ONNX Runtime Web (the same model exported to
// ONNX, on the same inputs) in this browser. Driven by bench/run.mjs.
import { createReranker } from '/www/shelfrank.js';
import initCpu, { Ranker } from '/www/pkg-cpu/shelfrank.js';

const catalog = await (await fetch('/www/demo/catalog.json')).json();

async function blobUrl(url) {
  const bytes = await (await fetch(url)).arrayBuffer();
  return URL.createObjectURL(new Blob([bytes]));
}

// Downloads are excluded from cold start: every file is fetched once, up front.
const files = {
  modelUrl: await blobUrl('/models/shelfrank-scientific.bin'),
  wasmUrl: await blobUrl('/www/pkg-cpu/shelfrank_bg.wasm'),
  webgpuWasmUrl: await blobUrl('/www/pkg-webgpu/shelfrank_bg.wasm'),
};
const modelBytes = new Uint8Array(await (await fetch(files.modelUrl)).arrayBuffer());

/** A deterministic shopper: `history` events over catalog items, and `n` candidates. */
export function scenario(history, n) {
  const kinds = ['view', 'click', 'add_to_cart', 'view', 'purchase', 'view', 'search'];
  const events = [];
  for (let i = 0; i < history; i++) {
    const item = catalog[(i * 131 + 17) % catalog.length];
    const type = kinds[i % kinds.length];
    events.push(type === 'search' ? { type, query: item.title.split(' ').slice(0, 2).join(' ') } : { type, id: item.id, title: item.title, category: item.category ?? undefined, brand: item.brand ?? undefined });
  }
  const candidates = [];
  for (let i = 0; i < n; i++) {
    const item = catalog[i % catalog.length];
    // Past the catalog's end (5,000), ids repeat: make them unique, unknown to the model.
    const id = i < catalog.length ? item.id : `${item.id}-${i}`;
    candidates.push({ id, title: item.title, category: item.category ?? undefined, brand: item.brand ?? undefined, serverScore: n - i });
  }
  return { events, candidates };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function memoryMb() {
  if (typeof performance.measureUserAgentSpecificMemory !== 'function' || !crossOriginIsolated) return null;
  try {
    const { bytes } = await performance.measureUserAgentSpecificMemory();
    return Math.round((bytes / 1048576) * 10) / 10;
  } catch {
    return null;
  }
}

/** shelfrank, through the public API: cold start, then warm reranks. */
export async function benchShelfrank({ backend, history, candidates: n, runs, warmup = 20, worker = true }) {
  const { events, candidates } = scenario(history, n);
  const t0 = performance.now();
  const shelf = createReranker({ ...files, backend, worker, persist: false, budgetMs: 0, dataLayer: false, captureDom: false });
  await shelf.ready;
  for (const event of events) shelf.record(event);
  const first = await shelf.rerank(candidates);
  const coldMs = performance.now() - t0;
  if (first.fallback) throw first.error;
  for (let i = 0; i < warmup; i++) await shelf.rerank(candidates);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const result = await shelf.rerank(candidates);
    if (result.fallback) throw result.error;
    times.push(result.ms);
  }
  times.sort((a, b) => a - b);
  // The same, with a new event before each rerank: the session state is
  // recomputed every time (the candidates' text vectors stay cached).
  const afterEvent = [];
  for (let i = 0; i < runs; i++) {
    const item = catalog[(i * 53 + 7) % catalog.length];
    shelf.record({ type: 'view', id: item.id, title: item.title });
    const result = await shelf.rerank(candidates);
    if (result.fallback) throw result.error;
    afterEvent.push(result.ms);
  }
  afterEvent.sort((a, b) => a - b);
  const memory = await memoryMb();
  const backendInfo = shelf.backend;
  const scores = first.ranking.slice().sort((a, b) => a.originalPosition - b.originalPosition).map((r) => r.modelScore);
  shelf.destroy();
  return {
    engine: 'shelfrank',
    backend: backendInfo.name,
    adapter: backendInfo.adapter ? `${backendInfo.adapter.name || backendInfo.adapter.deviceType}${backendInfo.adapter.isFallback ? ' (software fallback)' : ''}` : null,
    worker,
    candidates: n,
    history,
    p50_ms: percentile(times, 0.5),
    p95_ms: percentile(times, 0.95),
    p50_after_event_ms: percentile(afterEvent, 0.5),
    cold_ms: coldMs,
    memory_mb: memory,
    runs,
    scores,
  };
}

/**
 * The uncached case, what a shopper's next list costs: before every timed
 * rerank one new event is recorded and the candidates are `n` items whose
 * texts were never reranked before (round `round` of the catalog, each
 * title marked with the round), so no cached session state or candidate
 * vector can help. The timer runs from `record` to the ranked list. Both
 * sides warm up for `warmup` rounds and at least `warmupMs` (V8 first runs
 * wasm with its baseline compiler and optimises hot functions in the
 * background), so steady state is compared with steady state.
 */
export function freshCandidates(n, round) {
  const { candidates } = scenario(0, n);
  return candidates.map((c, i) => ({ ...c, title: `${catalog[(i + round * 7) % catalog.length].title} ${round}` }));
}

function newEvent(round) {
  const item = catalog[(round * 53 + 7) % catalog.length];
  return { type: 'view', id: item.id, title: `${item.title} ${round}`, category: item.category ?? undefined, brand: item.brand ?? undefined };
}

/**
 * The uncached case for both engines in one page, interleaved round by
 * round (alternating which goes first), so that both see the same machine
 * noise and exactly the same inputs:
 * - shelfrank through the public API (`worker` or the page thread), timed
 *   from `record` to the ranked list;
 * - ONNX Runtime Web (wasm EP, one thread), timed from the same `record`
 *   through the same WordPiece (shelfrank's, in wasm, with the same token
 *   cache for past events) turning the new event and the candidates into
 *   ready typed arrays, the whole network (text tower on every event and
 *   candidate, transformer, affinity, blend), to the sorted scores.
 * Both warm up for `warmup` rounds and at least `warmupMs`. The last
 * round's scores are compared.
 */
export async function benchUncached({ history, candidates: n, runs, warmup = 10, warmupMs = 3000, worker = true, onnxUrl }) {
  const { events } = scenario(history, 0);
  const shelf = createReranker({ ...files, backend: 'cpu', worker, persist: false, budgetMs: 0, dataLayer: false, captureDom: false });
  await shelf.ready;
  for (const event of events) shelf.record(event);
  let ort = null;
  if (onnxUrl) {
    const dist = '/node_modules/onnxruntime-web/dist/';
    const wasmBlob = await blobUrl(dist + 'ort-wasm-simd-threaded.wasm');
    const onnxBytes = new Uint8Array(await (await fetch(onnxUrl)).arrayBuffer());
    if (!prepared) {
      await initCpu({ module_or_path: files.wasmUrl });
      prepared = true;
    }
    const tokenizer = await Ranker.load(modelBytes, undefined, { backend: 'cpu' });
    for (const event of events) tokenizer.record(event);
    const { createOrtRanker } = await import('/bench/ort.mjs');
    const ranker = await createOrtRanker({ ortModuleUrl: dist + 'ort.wasm.min.mjs', modelBytes: onnxBytes, executionProvider: 'wasm', numThreads: 1, wasmPaths: { wasm: wasmBlob } });
    ort = { tokenizer, ranker };
  }
  const order = (scores) => Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]);
  const ours = async (event, candidates) => {
    const t = performance.now();
    shelf.record(event);
    const result = await shelf.rerank(candidates);
    const ms = performance.now() - t;
    if (result.fallback) throw result.error;
    return { ms, scores: () => result.ranking.slice().sort((a, b) => a.originalPosition - b.originalPosition).map((r) => r.modelScore) };
  };
  const theirs = async (event, candidates) => {
    const t = performance.now();
    ort.tokenizer.record(event);
    const inputs = ort.tokenizer.scoringInputsPacked(JSON.stringify(candidates));
    const prepared = performance.now();
    const out = await ort.ranker.score(inputs);
    order(out);
    return { ms: performance.now() - t, prepMs: prepared - t, scores: () => Array.from(out) };
  };
  const times = { ours: [], theirs: [], prep: [] };
  let last = null;
  const warmUntil = performance.now() + warmupMs;
  for (let round = 0, timed = 0; timed < runs; round++) {
    const candidates = freshCandidates(n, round);
    const event = newEvent(round);
    const warm = round < warmup || performance.now() < warmUntil;
    const a = round % 2 === 0 || !ort ? await ours(event, candidates) : null;
    const b = ort ? await theirs(event, candidates) : null;
    const c = a ?? (await ours(event, candidates));
    if (warm) continue;
    times.ours.push(c.ms);
    if (b) times.theirs.push(b.ms);
    if (b) times.prep.push(b.prepMs);
    last = { ours: c, theirs: b };
    timed++;
  }
  const stats = (list) => {
    list.sort((x, y) => x - y);
    return { p50_ms: percentile(list, 0.5), p95_ms: percentile(list, 0.95), runs: list.length };
  };
  const memory = await memoryMb();
  const oursScores = last.ours.scores();
  const result = {
    shelfrank: { engine: 'shelfrank', case: 'uncached', backend: 'cpu', worker, candidates: n, history, ...stats(times.ours), memory_mb: memory },
  };
  if (ort) {
    const theirScores = last.theirs.scores();
    result.ort = {
      engine: 'ort-web',
      case: 'uncached',
      backend: 'wasm',
      threads: ort.ranker.numThreads,
      candidates: n,
      history,
      ...stats(times.theirs),
      // Of which: recording the event and tokenising into typed arrays (the same work shelfrank does).
      p50_tokenise_ms: stats(times.prep).p50_ms,
      max_score_diff: Number(Math.max(...theirScores.map((x, i) => Math.abs(x - oursScores[i]))).toExponential(2)),
    };
    await ort.ranker.release();
    ort.tokenizer.free();
  }
  shelf.destroy();
  return result;
}

let prepared = null;
/** The network's inputs for a scenario, from shelfrank's own tokenizer and history, in bench/ort.mjs's layout (not timed). */
export async function inputsFor(history, n) {
  if (!prepared) {
    await initCpu({ module_or_path: files.wasmUrl });
    prepared = true;
  }
  const { events, candidates } = scenario(history, n);
  const ranker = await Ranker.load(modelBytes, undefined, { backend: 'cpu' });
  const now = Date.now();
  for (const [i, event] of events.entries()) ranker.record({ ...event, timestamp: now - (events.length - i) });
  const inputs = ranker.scoringInputsPacked(JSON.stringify(candidates));
  ranker.free();
  return inputs;
}

/**
 * ONNX Runtime Web on the same case: the exported model, fed the inputs
 * shelfrank's own tokenizer made (tokenizing is not timed for ORT, which
 * has no tokenizer: that favours ORT), then the scores sorted, as a page
 * would. Single-threaded, like shelfrank. Downloads excluded.
 */
export async function benchOrt({ ep, history, candidates: n, runs, warmup = 20, onnxUrl }) {
  const dist = '/node_modules/onnxruntime-web/dist/';
  const moduleUrl = dist + (ep === 'webgpu' ? 'ort.webgpu.min.mjs' : 'ort.wasm.min.mjs');
  const wasmFile = ep === 'webgpu' ? 'ort-wasm-simd-threaded.asyncify.wasm' : 'ort-wasm-simd-threaded.wasm';
  const wasmBlob = await blobUrl(dist + wasmFile);
  const modelBytes = new Uint8Array(await (await fetch(onnxUrl)).arrayBuffer());
  const inputs = await inputsFor(history, n);
  const { createOrtRanker } = await import('/bench/ort.mjs');
  const order = (scores) => Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]);
  const t0 = performance.now();
  const ranker = await createOrtRanker({ ortModuleUrl: moduleUrl, modelBytes, executionProvider: ep, numThreads: 1, wasmPaths: { wasm: wasmBlob } });
  const first = await ranker.score(inputs);
  order(first);
  const coldMs = performance.now() - t0;
  for (let i = 0; i < warmup; i++) order(await ranker.score(inputs));
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    order(await ranker.score(inputs));
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const memory = await memoryMb();
  await ranker.release();
  return {
    engine: 'ort-web',
    backend: ep,
    threads: ranker.numThreads,
    candidates: n,
    history,
    p50_ms: percentile(times, 0.5),
    p95_ms: percentile(times, 0.95),
    cold_ms: coldMs,
    memory_mb: memory,
    runs,
    scores: Array.from(first),
  };
}

/**
 * For bench/profile.mjs's cached mode: a page-thread reranker with
 * `history` events, warmed on `candidates` candidates; then
 * `cachedReranks(runs)` reranks the same list `runs` times (p50 ms).
 */
let cached = null;
export async function prepareCached({ history, candidates: n, warmup = 50 }) {
  const { events, candidates } = scenario(history, n);
  const shelf = createReranker({ ...files, backend: 'cpu', worker: false, persist: false, budgetMs: 0, dataLayer: false, captureDom: false });
  await shelf.ready;
  for (const event of events) shelf.record(event);
  for (let i = 0; i < warmup; i++) await shelf.rerank(candidates);
  cached = { shelf, candidates };
}
export async function cachedReranks(runs) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const result = await cached.shelf.rerank(cached.candidates);
    if (result.fallback) throw result.error;
    times.push(result.ms);
  }
  times.sort((a, b) => a - b);
  return { p50_ms: percentile(times, 0.5) };
}

window.bench = { prepareCached, cachedReranks, benchShelfrank, benchOrt, benchUncached, freshCandidates, inputsFor, scenario, files, memoryMb, percentile };
window.benchReady = true;
