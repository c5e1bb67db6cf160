// The ranker's engine: the wasm model plus the shopper's stored history. It
// runs inside the Web Worker (worker.js) by default, or on the page's thread
// when the page asks for no worker. It never talks to the network except to
// fetch the model and tokenizer files it is given.

// Both builds' JS glue is imported statically: it is small, and a worker
// with no dynamic import() is one chunk, which every bundler can emit in any
// worker format (Vite 5-7 build workers as IIFE by default, and Rollup
// cannot split an IIFE into chunks). Only the glue is static: a build's .wasm is fetched when
// `rankerClass` first asks for it, so the WebGPU one only for a GPU.
import initCpu, { Ranker as CpuRanker } from './pkg-cpu/shelfrank.js';
import initWebgpu, { Ranker as WebgpuRanker } from './pkg-webgpu/shelfrank.js';

/**
 * The two wasm builds: the small CPU one every page loads, and the WebGPU
 * one, fetched only when a hardware GPU adapter exists. Each is loaded once.
 * Each .wasm is named by a literal `new URL(…, import.meta.url)`, which
 * bundlers follow (and emit the file); the URL is only made when needed, so
 * a bundle without `import.meta` support fails at the load it concerns, not
 * at import.
 */
const kinds = {
  cpu: { init: initCpu, Ranker: CpuRanker, url: () => new URL('./pkg-cpu/shelfrank_bg.wasm', import.meta.url) },
  webgpu: { init: initWebgpu, Ranker: WebgpuRanker, url: () => new URL('./pkg-webgpu/shelfrank_bg.wasm', import.meta.url) },
};
const builds = new Map();
/** Where each loaded build's wasm came from: 'page' (compiled there) or 'fetched' (here). */
const wasmFrom = new Map();
/**
 * A build's Ranker class, its wasm instantiated once. `compiled`: a promise
 * of the module the page compiled while this worker started (or null); the
 * wasm is fetched here when there is none, or it will not instantiate.
 */
function rankerClass(kind, wasmUrl, compiled = null) {
  if (!builds.has(kind)) {
    const load = (async () => {
      const build = kinds[kind];
      const module = await compiled;
      if (module instanceof WebAssembly.Module) {
        try {
          await build.init({ module_or_path: module });
          wasmFrom.set(kind, 'page');
          return build.Ranker;
        } catch {
          // Not this glue's wasm (an older copy, say): fetched below.
        }
      }
      await build.init({ module_or_path: wasmUrl || build.url() });
      wasmFrom.set(kind, 'fetched');
      return build.Ranker;
    })();
    load.catch(() => builds.delete(kind));
    builds.set(kind, load);
  }
  return builds.get(kind);
}

/** A ranker on the CPU build from the bytes and options a load used. */
async function loadCpu({ modelBytes, tokenizerBytes, options, wasmUrl }) {
  const Cpu = await rankerClass('cpu', wasmUrl);
  return Cpu.load(modelBytes, tokenizerBytes, { ...options, backend: 'cpu' });
}

/** A hardware WebGPU adapter, or null (none, or only a software fallback, unless allowed). */
async function hardwareAdapter(allowFallback) {
  const gpu = globalThis.navigator?.gpu;
  if (!gpu) return { adapter: null, why: 'this browser has no WebGPU' };
  let adapter = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch {
    adapter = null;
  }
  if (!adapter) return { adapter: null, why: 'no WebGPU adapter' };
  const fallback = adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false;
  if (fallback && !allowFallback) return { adapter: null, why: 'the only WebGPU adapter is a software fallback' };
  return { adapter, why: '' };
}

function adapterKey(adapter) {
  const info = adapter.info ?? {};
  return [info.vendor, info.architecture, info.device, info.description].map((v) => v ?? '').join('|');
}

/** Median ms of `runs` timed calls of the ranker's fixed benchmark inference. */
async function timeRanker(ranker, runs) {
  await ranker.benchmark(); // compile and upload first
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await ranker.benchmark();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[runs >> 1];
}

const STORE = 'history';
const KEY = 'events';

function namedError(name, message) {
  const error = new Error(message);
  error.name = name;
  return error;
}

const httpError = (url, what, status) => namedError('FetchError', `cannot fetch the ${what} from ${url}: HTTP ${status}`);

async function fetchBytes(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw namedError('FetchError', `cannot fetch the ${what} from ${url}: ${error.message}`);
  }
  if (!response.ok) throw httpError(url, what, response.status);
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * The model's bytes as the page handed them over (`provideModel`): the
 * bytes, or the HTTP status the server refused them with (reported as this
 * engine's own fetch would, without asking the server again), or null
 * when the page's fetch failed outright (fetched here once more).
 */
function pageModelBytes(given, url) {
  if (given instanceof Uint8Array) return given;
  if (Number.isInteger(given)) throw httpError(url, 'model', given);
  return fetchBytes(url, 'model');
}

/**
 * sha256 (hex) of a model file's payload (from byte 44 on, after the hash
 * it stores), by the browser's own crypto: a few ms for a megabyte, where
 * hashing in freshly loaded wasm took ~57 ms of every page view's load.
 * Undefined where there is no SubtleCrypto (an insecure context): the
 * wasm then hashes the file itself.
 */
async function payloadDigest(bytes) {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle || bytes.length < 44) return undefined;
  try {
    const digest = new Uint8Array(await subtle.digest('SHA-256', bytes.subarray(44)));
    return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  } catch {
    return undefined;
  }
}

/**
 * Settles when `tx` does, never later and never not at all: complete, or
 * the first of error (a failed request, which then aborts the transaction)
 * and abort (a quota failure aborts at commit with no error event; so does
 * the browser closing the connection, when site data is cleared).
 */
function settled(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = (event) => reject(event.target?.error ?? tx.error ?? namedError('StorageError', 'an IndexedDB request failed'));
    tx.onabort = () => reject(tx.error ?? namedError('StorageError', 'the IndexedDB transaction was aborted'));
  });
}

/** How long opening the database may wait (an open queues behind another tab's blocked upgrade or delete, without limit). */
const OPEN_TIMEOUT_MS = 15_000;

/**
 * The history in IndexedDB: one record holding the bounded event list, so
 * what is stored is always exactly what the ranker remembers. Opened lazily:
 * a shopper who never gets recorded never gets a database.
 */
class HistoryStore {
  #name;
  #onDeleted;
  #db = null;
  #opening = null;
  #writing = null;
  #pending = null;

  /** `onDeleted()` runs when another tab deletes the database (its forget()). */
  constructor(name, onDeleted = () => {}) {
    this.#name = name;
    this.#onDeleted = onDeleted;
  }

  static available() {
    return typeof indexedDB !== 'undefined' && indexedDB !== null;
  }

  /** The open connection, one for all callers (a second open would leave a connection nobody closes). */
  #open() {
    if (!this.#opening) {
      const opening = this.#connect();
      this.#opening = opening;
      opening.catch(() => {
        if (this.#opening === opening) this.#opening = null;
      });
    }
    return this.#opening;
  }

  /** Forgets `db` as the connection (it closed), so the next operation opens a new one. */
  #drop(db) {
    if (this.#db !== db) return;
    this.#db = null;
    this.#opening = null;
  }

  #connect() {
    return new Promise((resolve, reject) => {
      let done = false;
      const fail = (error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        reject(error);
      };
      const timer = setTimeout(
        () => fail(namedError('TimeoutError', `IndexedDB did not open within ${OPEN_TIMEOUT_MS / 1000} s (another tab may be holding it)`)),
        OPEN_TIMEOUT_MS,
      );
      let req;
      try {
        req = indexedDB.open(this.#name, 1);
      } catch (error) {
        fail(error); // SecurityError where storage is not allowed
        return;
      }
      req.onupgradeneeded = () => {
        if (done) {
          // Given up on already (it waited behind a delete): create nothing.
          req.transaction?.abort();
          return;
        }
        try {
          req.result.createObjectStore(STORE);
        } catch {
          // Thrown out of this handler it would reach the worker's global
          // scope (a crash, for the page); aborting fails the open instead.
          req.transaction?.abort();
        }
      };
      req.onsuccess = () => {
        const db = req.result;
        if (done) {
          db.close(); // given up on already: close it, or it would block a later delete
          return;
        }
        done = true;
        clearTimeout(timer);
        // Another tab deleting the database (forget) must not be blocked by us.
        db.onversionchange = (event) => {
          db.close();
          this.#drop(db);
          // Deleted (not upgraded): the shopper asked to forget in another
          // tab; a write not yet made must not bring the history back.
          if (event.newVersion === null) {
            this.#pending = null;
            this.#onDeleted();
          }
        };
        // Closed by the browser (site data cleared, disk failure): its transactions abort; open anew next time.
        db.onclose = () => this.#drop(db);
        this.#db = db;
        resolve(db);
      };
      // An upgrade aborted (over the quota, say) fails the open with it. `blocked`
      // is not an end: the open goes on once the other connections close, or the timer gives up.
      req.onerror = () => fail(req.error ?? namedError('StorageError', 'IndexedDB could not be opened'));
    });
  }

  /**
   * Runs `work(objectStore)` in one transaction and resolves with what it
   * returned once the transaction has completed; rejects when it fails,
   * including at once when the connection is closing (InvalidStateError).
   */
  async #transaction(mode, work) {
    const db = await this.#open();
    let tx;
    let result;
    try {
      tx = db.transaction(STORE, mode);
      result = work(tx.objectStore(STORE));
    } catch (error) {
      if (error?.name === 'InvalidStateError') this.#drop(db);
      try {
        tx?.abort();
      } catch {
        // already finished
      }
      throw error;
    }
    await settled(tx);
    return result;
  }

  /** The value stored under `key` (read once its transaction has completed). */
  async #read(key) {
    const req = await this.#transaction('readonly', (store) => store.get(key));
    return req.result;
  }

  async #exists() {
    if (typeof indexedDB.databases !== 'function') return true;
    // Listing can fail, or (a browser bug) never answer: then open it and see.
    let timer;
    const gaveUp = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), OPEN_TIMEOUT_MS);
    });
    const dbs = await Promise.race([Promise.resolve().then(() => indexedDB.databases()).catch(() => null), gaveUp]).finally(() => clearTimeout(timer));
    return Array.isArray(dbs) ? dbs.some((d) => d.name === this.#name) : true;
  }

  /** The stored events, or [] when nothing is stored. Throws on a corrupted record. */
  async load() {
    if (!(await this.#exists())) return [];
    const value = await this.#read(KEY);
    if (value === undefined) return [];
    if (!value || value.version !== 1 || !Array.isArray(value.events)) {
      throw Object.assign(namedError('StorageError', 'the stored history is not in a format this version understands; it was reset'), { corrupted: true });
    }
    return value.events;
  }

  /** Stores `events`; writes are coalesced so only the latest list is written. Settles once written or failed. */
  save(events) {
    this.#pending = events;
    if (!this.#writing) {
      this.#writing = this.#flush().finally(() => {
        this.#writing = null;
      });
    }
    return this.#writing;
  }

  async #flush() {
    try {
      while (this.#pending) {
        const events = this.#pending;
        this.#pending = null;
        await this.#transaction('readwrite', (store) => store.put({ version: 1, events }, KEY));
      }
    } catch (error) {
      // The list waiting behind a failed write goes with it: its callers
      // share this promise and see the failure, and every save carries the
      // whole list, so the next one writes it again.
      this.#pending = null;
      throw error;
    }
  }

  /** Settles once no write of this store is under way. */
  async idle() {
    await this.#writing?.catch(() => {});
  }

  /** Another value kept next to the history (e.g. the calibration verdict). */
  async get(key) {
    if (!(await this.#exists())) return undefined;
    return this.#read(key);
  }

  /** Stores `value` under `key`; settles once written or failed (over the quota: QuotaExceededError). */
  async put(key, value) {
    await this.#transaction('readwrite', (store) => store.put(value, key));
  }

  /** Deletes the whole database. */
  async clear() {
    this.#pending = null;
    await this.#writing?.catch(() => {});
    // Close our connection, even one still opening, or the delete waits for it.
    const opening = this.#opening;
    this.#opening = null;
    this.#db = null;
    (await opening?.catch(() => null))?.close();
    await new Promise((resolve, reject) => {
      let req;
      try {
        req = indexedDB.deleteDatabase(this.#name);
      } catch (error) {
        reject(error);
        return;
      }
      req.onsuccess = () => resolve();
      req.onerror = () => reject(req.error ?? namedError('StorageError', 'IndexedDB could not be deleted'));
      req.onblocked = () => resolve(); // finishes once other connections close
    });
  }
}

export class Engine {
  #ranker = null;
  #rebuild = null;
  #backend = null;
  #store = null;
  #calibration = null;
  #storeName = 'shelfrank';
  #persist = true;
  #storageEnabled = false;
  /**
   * What the page fetched for a load while this engine started: the
   * model's bytes (`modelFromPage`) and the CPU build's compiled wasm
   * (`wasmFromPage`), each `{ promise, resolve }`, made by whichever of
   * load and provideModel / provideWasm comes first.
   */
  #given = { model: null, wasm: null };

  #fromPage(what) {
    if (!this.#given[what]) {
      let resolve;
      const promise = new Promise((done) => (resolve = done));
      this.#given[what] = { promise, resolve };
    }
    return this.#given[what].promise;
  }

  /**
   * The model file's bytes, fetched by the page for a load with
   * `modelFromPage`, or the HTTP status the server refused them with, or
   * null when the page's fetch failed (see `pageModelBytes`).
   */
  provideModel(bytes) {
    this.#fromPage('model');
    this.#given.model.resolve(bytes instanceof Uint8Array || Number.isInteger(bytes) ? bytes : null);
  }

  /**
   * The CPU build's wasm, compiled by the page for a load with
   * `wasmFromPage` (a `WebAssembly.Module`), or null when the page could
   * not compile it (the engine then fetches it itself).
   */
  provideWasm(module) {
    this.#fromPage('wasm');
    this.#given.wasm.resolve(typeof WebAssembly !== 'undefined' && module instanceof WebAssembly.Module ? module : null);
  }

  /**
   * Loads the model. `storage`: whether the history may be read from and
   * written to IndexedDB now (false until consent, or under a privacy
   * signal). Resolves with what the page needs to know.
   */
  async load({
    modelUrl,
    tokenizerUrl,
    wasmUrl,
    webgpuWasmUrl,
    backend = 'auto',
    history,
    persist = true,
    storage = true,
    storageName = 'shelfrank',
    allowFallbackAdapter = false,
    modelFromPage = false,
    wasmFromPage = false,
  }) {
    if (!['auto', 'webgpu', 'cpu'].includes(backend)) {
      throw namedError('InvalidOptionError', `unknown backend '${backend}'; use 'auto', 'webgpu' or 'cpu'`);
    }
    // Where a load's time goes, for the load metric: ms from the start of
    // load to each step's end (the first four run side by side).
    const started = performance.now();
    const stages = {};
    const timed = (name, promise) =>
      promise.then((value) => {
        stages[name] = Math.round(performance.now() - started);
        return value;
      });
    // The stored history is read while the wasm and the model load: opening
    // IndexedDB takes its own time, and nothing in it needs the ranker.
    const early = storage && persist && HistoryStore.available() && !this.#store ? this.#readStore(storageName) : null;
    const probe = backend === 'auto' ? hardwareAdapter(allowFallbackAdapter) : Promise.resolve({ adapter: null, why: '' });
    const first = backend === 'webgpu' ? 'webgpu' : 'cpu';
    const [RankerClass, [modelBytes, modelSha256], tokenizerBytes, { adapter, why }] = await Promise.all([
      // Compiled by the page when it could (it starts before this worker has); fetched here otherwise.
      timed('wasm', first === 'cpu' ? rankerClass('cpu', wasmUrl, wasmFromPage ? this.#fromPage('wasm') : null) : rankerClass('webgpu', webgpuWasmUrl)),
      // From the page when it fetched the model itself; fetched here when it could not.
      timed('model', (modelFromPage ? this.#fromPage('model').then((given) => pageModelBytes(given, modelUrl)) : fetchBytes(modelUrl, 'model')).then(async (bytes) => [bytes, await payloadDigest(bytes)])),
      // The model file carries its tokenizer: a tokenizer.json only when the page names one.
      tokenizerUrl ? timed('tokenizer', fetchBytes(tokenizerUrl, 'tokenizer')) : undefined,
      timed('adapter', probe),
    ]);
    const options = { backend: first };
    if (history !== undefined) options.history = history;
    if (modelSha256) options.modelSha256 = modelSha256;
    let fallback = null;
    try {
      this.#ranker = await RankerClass.load(modelBytes, tokenizerBytes, options);
    } catch (error) {
      // WebGPU was asked for but cannot run here (no adapter, device
      // refused): serve from the CPU rather than not at all.
      if (first !== 'webgpu' || error?.name !== 'BackendError') throw error;
      fallback = { from: 'webgpu', to: 'cpu', error: error.name, message: error.message };
      options.backend = 'cpu';
      this.#ranker = await loadCpu({ modelBytes, tokenizerBytes, options, wasmUrl });
    }
    stages.ranker = Math.round(performance.now() - started);
    // Kept to rebuild on the CPU if the GPU fails later (device lost).
    this.#rebuild = { modelBytes, tokenizerBytes, options, wasmUrl };
    this.#backend = this.#ranker.backend;
    this.#persist = persist;
    this.#storeName = storageName;
    const restored = await this.setStorage(storage, early);
    stages.storage = Math.round(performance.now() - started);
    if (backend === 'auto') {
      if (adapter) {
        this.#backend = { ...this.#backend, reason: 'a WebGPU adapter exists: the CPU serves while WebGPU is measured against it' };
        this.#calibration = this.#calibrate(adapter, { modelBytes, tokenizerBytes, options, webgpuWasmUrl }).catch((error) => {
          this.#backend = { ...this.#backend, reason: `the CPU: WebGPU could not be measured (${error.name}: ${error.message})` };
        });
      } else {
        this.#backend = { ...this.#backend, reason: `the CPU build: ${why}` };
      }
    }
    if (fallback) this.#backend = { ...this.#backend, reason: `the CPU: WebGPU was requested but failed (${fallback.message})` };
    // The ranker's own request limits: the page bounds its copies by them.
    return { backend: this.#backend, modelInfo: this.#ranker.modelInfo, limits: RankerClass.limits(), ...restored, fallback, stages, wasmFrom: wasmFrom.get(options.backend) ?? null };
  }

  /**
   * Loads the WebGPU build next to the serving CPU ranker, times both on
   * the same fixed inference, and switches to WebGPU only if it is clearly
   * faster. The verdict is kept per adapter (with the history, when storage
   * is allowed), so a device that lost once does not download the WebGPU
   * build again.
   */
  async #calibrate(adapter, { modelBytes, tokenizerBytes, options, webgpuWasmUrl }) {
    const key = adapterKey(adapter);
    const known = await this.#store?.get('calibration').catch(() => null);
    if (known?.key === key && known.choice === 'cpu') {
      this.#backend = { ...this.#backend, reason: `the CPU: it beat this GPU before (${known.cpuMs.toFixed(1)} vs ${known.gpuMs.toFixed(1)} ms)` };
      return known;
    }
    const Gpu = await rankerClass('webgpu', webgpuWasmUrl);
    const gpu = await Gpu.load(modelBytes, tokenizerBytes, { ...options, backend: 'webgpu' });
    const gpuMs = await timeRanker(gpu, 5);
    const cpuMs = await timeRanker(this.#loaded, 5);
    const choice = gpuMs < 0.8 * cpuMs ? 'webgpu' : 'cpu';
    const verdict = { key, choice, cpuMs, gpuMs, at: Date.now() };
    if (choice === 'webgpu') {
      // Move the history over; events keep arriving on this thread only, so nothing is lost.
      for (const event of this.#loaded.history()) gpu.record(event);
      const old = this.#ranker;
      this.#ranker = gpu;
      old.free();
      this.#backend = { ...gpu.backend, reason: `WebGPU: measured faster than the CPU (${gpuMs.toFixed(1)} vs ${cpuMs.toFixed(1)} ms)` };
    } else {
      gpu.free();
      this.#backend = { ...this.#backend, reason: `the CPU: measured faster than WebGPU (${cpuMs.toFixed(1)} vs ${gpuMs.toFixed(1)} ms)` };
    }
    // Best effort (over the quota it fails at once), and it always settles:
    // calibration() waits for it, so a verdict it resolves with is stored if it could be.
    await this.#store?.put('calibration', verdict).catch(() => {});
    return verdict;
  }

  /**
   * The calibration's verdict once WebGPU has been measured and the verdict
   * stored or its write failed (null when there was none). How long the
   * measurement takes is the device's: loading the WebGPU build warms up
   * every kernel shape, seconds on a software adapter.
   */
  async calibration() {
    return (await this.#calibration) ?? null;
  }

  /** Which backend serves now. */
  backend() {
    return this.#backend;
  }

  get #loaded() {
    if (!this.#ranker) throw namedError('NotReadyError', 'the ranker is not loaded');
    return this.#ranker;
  }

  /** Where the history lives now. */
  get storage() {
    if (!this.#storageEnabled) return 'none';
    return this.#store ? 'indexeddb' : 'memory';
  }

  /** A store for `name` and its stored events, being read (`{ store, reading }`). */
  #readStore(name) {
    const store = new HistoryStore(name, () => this.#ranker?.forget());
    const reading = store.load();
    reading.catch(() => {}); // awaited, and its error handled, by setStorage
    return { store, reading };
  }

  /**
   * Turns storage on (reading back what was stored) or off (the in-memory
   * history stays until forget). Returns { restoredEvents, storage, warnings }.
   * `early`: a read load() started already (`#readStore`).
   */
  async setStorage(enabled, early = null) {
    this.#storageEnabled = enabled;
    const warnings = [];
    let restoredEvents = 0;
    if (!enabled) return { restoredEvents, storage: this.storage, warnings };
    if (this.#persist && HistoryStore.available() && !this.#store) {
      const { store, reading } = early ?? this.#readStore(this.#storeName);
      let stored = [];
      try {
        stored = await reading;
        this.#store = store;
      } catch (error) {
        warnings.push({ name: error.name || 'StorageError', message: error.message });
        // A corrupted record is dropped and storage carries on; an
        // unavailable IndexedDB (private mode, blocked, failing) leaves
        // memory only, and what it holds is not deleted.
        if (error.corrupted) {
          await store.clear().catch(() => {});
          this.#store = store;
        }
      }
      let unreadable = 0;
      for (const event of stored) {
        try {
          this.#loaded.record(event);
        } catch {
          // A stored event this version cannot read is dropped, not fatal.
          unreadable++;
        }
      }
      if (unreadable > 0) {
        warnings.push({ name: 'StorageError', message: `${unreadable} of ${stored.length} stored events could not be read and were dropped` });
      }
      // Expired or unreadable events are gone from memory: store that too.
      restoredEvents = this.#loaded.historyLength;
      if (stored.length !== restoredEvents) warnings.push(...(await this.#save()));
    }
    return { restoredEvents, storage: this.storage, warnings };
  }

  /**
   * Takes the stored history as this engine's when it differs from the one
   * in memory: another context (the page's own worker on a first page
   * view, another tab) wrote it since. Used by a host that outlives page
   * views (the service worker) when a page connects. Resolves with the
   * number of events now held.
   */
  async resync() {
    const store = this.#store;
    if (!store || !this.#storageEnabled) return this.#loaded.historyLength;
    await store.idle(); // our own writes first, so what is read is never older than memory
    const stored = await store.load().catch(() => null);
    if (!stored || this.#store !== store) return this.#loaded.historyLength;
    const ranker = this.#loaded;
    if (JSON.stringify(stored) !== JSON.stringify(ranker.history())) {
      ranker.forget();
      for (const event of stored) {
        try {
          ranker.record(event);
        } catch {
          // skip what cannot be read, as a restore does
        }
      }
    }
    return ranker.historyLength;
  }

  /** Writes the history; resolves with a warning the first time a write fails. */
  async #save() {
    const store = this.#store;
    if (!store || !this.#storageEnabled) return [];
    try {
      await store.save(this.#loaded.history());
      return [];
    } catch (error) {
      // Quota exceeded or storage gone: keep going in memory, and say so once.
      if (this.#store !== store) return [];
      this.#store = null;
      return [{ name: error?.name || 'StorageError', message: `the history could not be stored${error?.message ? ` (${error.message})` : ''}; it is kept in memory only`, during: 'store' }];
    }
  }

  /** Records an event; resolves with { warnings } once it is stored (or storing it failed). */
  async record(event) {
    this.#loaded.record(event);
    return { warnings: await this.#save() };
  }

  /** The live events (expired ones are dropped first, from storage too). */
  async history() {
    const ranker = this.#loaded;
    const before = ranker.historyLength;
    const events = ranker.history();
    if (events.length !== before) await this.#save();
    return events;
  }

  async exportHistory() {
    return {
      format: 'shelfrank-history',
      version: 1,
      exportedAt: new Date().toISOString(),
      storage: this.storage,
      events: this.#ranker ? await this.history() : [],
      // Not about the shopper: which backend won on this device, if stored.
      device: (await this.#store?.get('calibration').catch(() => null)) ?? null,
    };
  }

  /** Erases the history everywhere; `storageName` names the database when the ranker never loaded. */
  async forget(storageName = this.#storeName) {
    this.#ranker?.forget();
    if (this.#store) {
      const store = this.#store;
      this.#store = null;
      await store.clear();
    } else if (HistoryStore.available()) {
      // Also erase what an earlier page stored, even if this one never
      // opened it (or does not persist).
      await new HistoryStore(storageName).clear();
    }
  }

  /**
   * Reranks `json` (the candidate list as the JSON text the shim sends)
   * unless `deadline` (ms since the epoch) has already passed: a request
   * the page has given up on is dropped, not computed. One string in,
   * typed arrays out: no per-field crossing into wasm. With `listKey`, the
   * list is remembered under it; `json` null with the same key reranks
   * that list again, or answers `{ resend: true }` when it is no longer
   * the one held.
   */
  async rerank(json, options, deadline, listKey = null) {
    if (deadline && Date.now() > deadline) return { skipped: true };
    const ranker = this.#loaded;
    if (json === null) {
      // The caller's list is the one it last sent under `listKey`: the
      // ranker reranks it again without a copy if it still holds it (no
      // other list came in between, from this page or, in the service
      // worker, another; a new ranker holds none), else it answers null.
      let packed;
      try {
        packed = listKey ? await ranker.rerankLast(listKey, options) : null;
      } catch (error) {
        if (/^Invalid/.test(error?.name ?? '')) throw error;
        packed = null; // a GPU failure: the whole list comes again, and is answered from the CPU
      }
      if (!packed) return { resend: true };
      return { packed, historyEvents: ranker.historyLength, backend: this.#backend };
    }
    try {
      const packed = await ranker.rerankPacked(json, options, listKey ?? undefined);
      return { packed, historyEvents: ranker.historyLength, backend: this.#backend };
    } catch (error) {
      // Bad input is the caller's; anything else on the GPU (device lost,
      // out of memory, a trap in the WebGPU build) moves this engine to the
      // CPU for good, and this request is answered from there.
      if (this.#backend?.name !== 'webgpu' || /^Invalid/.test(error?.name ?? '')) throw error;
      const recovered = await this.#fallBackToCpu(ranker, error);
      const packed = await this.#loaded.rerankPacked(json, options, listKey ?? undefined);
      return { packed, historyEvents: this.#loaded.historyLength, backend: this.#backend, recovered };
    }
  }

  /** Replaces a failed WebGPU ranker with a CPU one holding the same history. */
  async #fallBackToCpu(failed, error) {
    const cpu = await loadCpu(this.#rebuild);
    let events = [];
    try {
      events = failed.history();
    } catch {
      // The failed build cannot even answer: take the stored copy.
      events = (await this.#store?.load().catch(() => [])) ?? [];
    }
    for (const event of events) {
      try {
        cpu.record(event);
      } catch {
        // skip what cannot be read
      }
    }
    this.#ranker = cpu;
    try {
      failed.free();
    } catch {
      // already broken
    }
    const name = error?.name || 'Error';
    this.#backend = { name: 'cpu', reason: `the CPU: WebGPU failed (${name}: ${error?.message ?? ''})` };
    return { from: 'webgpu', to: 'cpu', error: name, events: cpu.historyLength };
  }

  /** Numbers for watching the engine: history length and wasm memory. */
  stats() {
    const ranker = this.#loaded;
    return { historyLength: ranker.historyLength, wasmMemoryBytes: ranker.memoryBytes, backend: this.#backend?.name ?? null };
  }
}
