// shelfrank: on-device reranking of a storefront's candidate lists.
//
// `createReranker()` returns at once and loads the model in a Web Worker.
// Everything it exposes is safe for the page: `rerank` and `attach` never
// throw, and on any error, overrun or missing model the server's order
// stays. The shopper's history stays on the device (worker memory and
// IndexedDB); nothing here sends it anywhere.
import { captureDataLayer, captureDom, itemFromElement } from './capture.js';
import { CANDIDATE_FIELDS, HOST_VERSION, plainCandidates, plainEvent, unpackRanking } from './protocol.js';

/** Requests to the ranker that may be outstanding at once; more fall back at once. */
const MAX_IN_FLIGHT = 8;
/** Times a crashed worker is restarted (on the CPU) before the ranker gives up. */
const MAX_RESTARTS = 2;
/** Events kept while the model loads, recorded once it is ready. */
const MAX_QUEUED_EVENTS = 200;
const EVENT_TYPES = new Set(['view', 'click', 'add_to_cart', 'purchase', 'search']);

function namedError(name, message) {
  const error = new Error(message);
  error.name = name;
  return error;
}

function asError(error) {
  return error instanceof Error ? error : namedError('Error', String(error));
}

/** The model shipped in the package (it carries its tokenizer). */
export function defaultModelUrls() {
  return {
    modelUrl: new URL('../models/shelfrank-scientific.bin', import.meta.url).href,
  };
}

/**
 * Where each file is when the shop serves a copy of the package's folder at
 * `packageUrl` (for bundlers that do not follow `new URL(…, import.meta.url)`,
 * such as esbuild and Rollup). A relative URL is read against the page's.
 */
function packageFiles(packageUrl) {
  let base;
  try {
    const text = String(packageUrl);
    base = new URL(text.endsWith('/') ? text : `${text}/`, globalThis.location?.href);
  } catch {
    throw namedError('InvalidOptionError', `packageUrl '${String(packageUrl)}' is not a URL`);
  }
  const file = (name) => new URL(name, base).href;
  return {
    workerUrl: file('www/worker.js'),
    wasmUrl: file('www/pkg-cpu/shelfrank_bg.wasm'),
    webgpuWasmUrl: file('www/pkg-webgpu/shelfrank_bg.wasm'),
    modelUrl: file('models/shelfrank-scientific.bin'),
    serviceWorkerUrl: file('www/service-worker.js'),
  };
}

/** `url` resolved against the page (as it is, where it cannot be). */
function absolute(url) {
  try {
    return new URL(String(url), globalThis.location?.href).href;
  } catch {
    return String(url);
  }
}

/**
 * The model file's bytes, fetched by the page; the HTTP status when the
 * server refused it (the engine reports that without asking again); null
 * when the fetch itself failed (the engine then tries once more and says
 * why it could not).
 */
function fetchModel(url) {
  try {
    return globalThis
      .fetch(url)
      .then((response) => (response.ok ? response.arrayBuffer().then((buffer) => new Uint8Array(buffer)) : response.status))
      .catch(() => null);
  } catch {
    return Promise.resolve(null);
  }
}

/**
 * Where this tab remembers that the page's own Content Security Policy
 * refused to compile WebAssembly (no 'wasm-unsafe-eval'): the next page
 * views of the session leave the compile to the worker, under its own
 * policy, instead of asking again and sending the shop another CSP report
 * each time. A technical flag, not about the shopper; `forget()` removes it.
 */
const PAGE_WASM_REFUSED = 'shelfrank:page-wasm-refused';

function sessionFlag(set) {
  try {
    const storage = globalThis.sessionStorage;
    if (set === undefined) return storage?.getItem(PAGE_WASM_REFUSED) === '1';
    if (set) storage?.setItem(PAGE_WASM_REFUSED, '1');
    else storage?.removeItem(PAGE_WASM_REFUSED);
  } catch {
    // Storage blocked (a sandboxed frame, privacy settings): ask each time.
  }
  return false;
}

/** Whether a failed compile was the page's policy refusing WebAssembly (Chromium, Firefox and Safari word it so). */
function refusedByPolicy(error) {
  return /Content Security Policy|\bCSP\b|unsafe-eval/i.test(String(error?.message ?? error));
}

/**
 * The CPU build's wasm, compiled on the page while the engine's worker
 * starts (compiling runs off the page's thread), or null when it cannot be
 * fetched or compiled here: the engine then fetches it itself. A compile
 * the page's policy refused is remembered for the session (above).
 */
function compileWasm(url) {
  try {
    const wasm = globalThis.WebAssembly;
    if (typeof wasm?.compile !== 'function') return Promise.resolve(null);
    return globalThis
      .fetch(url)
      .then((response) => {
        if (!response.ok) return null;
        // Streaming needs the server's application/wasm; any other type is compiled once it has arrived.
        const streaming = typeof wasm.compileStreaming === 'function' && response.headers.get('content-type')?.split(';')[0].trim() === 'application/wasm';
        const compiling = streaming ? wasm.compileStreaming(response) : response.arrayBuffer().then((bytes) => wasm.compile(bytes));
        return compiling.catch((error) => {
          if (refusedByPolicy(error)) sessionFlag(true);
          return null;
        });
      })
      .catch(() => null);
  } catch {
    return Promise.resolve(null);
  }
}

/** Talks to the engine in a Web Worker. */
class WorkerTransport {
  #worker;
  #next = 1;
  #pending = new Map();
  #failure = null;
  #started = false;
  /** True when the worker's script never ran (404, wrong MIME type, blocked): nothing was lost, run on the page instead. */
  unloadable = false;

  /**
   * `workerUrl`: the worker script, when not the one next to this module.
   * `onCrash(error)` runs once if the worker dies or throws outside a
   * request after its script ran; a script that cannot load rejects the
   * calls made so far and sets `unloadable` instead.
   */
  constructor(workerUrl, onCrash = () => {}) {
    // The literal `new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })`
    // is the pattern bundlers look for to build and emit the worker.
    this.#worker = workerUrl
      ? new Worker(workerUrl, { type: 'module', name: 'shelfrank' })
      : new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'shelfrank' });
    this.#worker.onmessage = ({ data }) => {
      if (data?.hello === true) {
        this.#started = true;
        return;
      }
      const call = this.#pending.get(data?.id);
      if (!call) return;
      this.#pending.delete(data.id);
      if (data.ok) call.resolve(data.value);
      else call.reject(namedError(data.error?.name ?? 'Error', data.error?.message ?? 'the ranker failed'));
    };
    const fail = (what) => (event) => {
      event.preventDefault?.();
      // An error before the worker's hello: its script (or one it imports) did not load.
      this.unloadable = !this.#started;
      const message = this.unloadable ? 'script could not be loaded (missing, wrong MIME type or blocked)' : what;
      this.#failure = namedError('WorkerError', `the ranker's worker ${message}${event.message ? ': ' + event.message : ''}`);
      for (const call of this.#pending.values()) call.reject(this.#failure);
      this.#pending.clear();
      this.#worker.onerror = this.#worker.onmessageerror = null;
      this.#worker.terminate();
      if (!this.unloadable) onCrash(this.#failure);
    };
    this.#worker.onerror = fail('failed');
    this.#worker.onmessageerror = fail('sent a message that could not be read');
  }

  call(op, ...args) {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        this.#worker.postMessage({ id, op, args });
      } catch (error) {
        this.#pending.delete(id);
        reject(namedError('DataCloneError', `cannot send to the ranker: ${asError(error).message}`));
      }
    });
  }

  terminate() {
    this.#worker.terminate();
    this.#failure = namedError('DestroyedError', 'the ranker was destroyed');
    for (const call of this.#pending.values()) call.reject(this.#failure);
    this.#pending.clear();
  }
}

/**
 * Names for the lists a page sends, unique across the pages one service
 * worker serves: a random prefix per page, then a count.
 */
const LIST_KEY_PREFIX = `${Math.random().toString(36).slice(2)}${Date.now().toString(36)}:`;
let listCount = 0;

/** Whether two plain candidate lists (from plainCandidates) hold the same values. */
function sameCandidates(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object') return false;
    for (const key of CANDIDATE_FIELDS) if (!Object.is(x[key], y[key])) return false;
  }
  return true;
}

/** Runs the engine on the page's own thread (worker: false). */
class LocalTransport {
  #engine = import('./engine.js').then(({ Engine }) => new Engine());

  async call(op, ...args) {
    const engine = await this.#engine;
    return engine[op](...args);
  }

  terminate() {}
}

const SERVICE_WORKER_FILE = './service-worker.js';
/** How long the service worker may take to answer a load, and any other call, before the page gives up on it. */
const HOST_LOAD_MS = 30_000;
const HOST_CALL_MS = 10 * 1000;
/** A visible page messages the service worker this often, so the browser does not stop it between page views. */
const KEEP_ALIVE_MS = 20_000;
/** On a first visit: how long after this page's load the service worker starts loading its own engine. */
const HOST_WARM_DELAY_MS = 200;

/**
 * The service-worker host for `serviceWorkerUrl` (its version in the URL):
 * `{ worker }` when it is active, or `{ worker: null, activated }` when it
 * is being registered now (a first visit, or a new version), `activated`
 * resolving with the worker once it can answer.
 */
async function serviceWorkerHost(serviceWorkerUrl) {
  const container = globalThis.navigator?.serviceWorker;
  if (!container) throw namedError('WorkerError', 'this browser offers no service workers here (an insecure origin, or a private mode)');
  let url;
  try {
    url = new URL(String(serviceWorkerUrl), globalThis.location?.href);
  } catch {
    throw namedError('InvalidOptionError', `serviceWorker '${String(serviceWorkerUrl)}' is not a URL`);
  }
  url.searchParams.set('v', String(HOST_VERSION));
  const scope = new URL('./', url).href;
  const existing = await container.getRegistration(scope);
  if (existing?.active?.scriptURL === url.href) return { worker: existing.active, registration: existing };
  // Not there yet (or an older version): register it for the next page view.
  const activated = container.register(url.href, { type: 'module', scope }).then(
    (registration) =>
      new Promise((resolve, reject) => {
        const worker = registration.installing ?? registration.waiting ?? registration.active;
        if (!worker) return reject(namedError('WorkerError', 'the service worker did not install'));
        if (worker.state === 'activated') return resolve(worker);
        worker.addEventListener('statechange', () => {
          if (worker.state === 'activated') resolve(worker);
          else if (worker.state === 'redundant') reject(namedError('WorkerError', 'the service worker failed to install'));
        });
      }),
  );
  return { worker: null, activated };
}

/**
 * Talks to the engine in the service worker, which outlives page views
 * (service-worker.js). Each call carries its own MessageChannel port for the
 * reply, so no answer ever reaches the page's `navigator.serviceWorker`
 * listeners (a shop's own service-worker messaging never sees ours).
 */
class ServiceWorkerTransport {
  #worker;
  #next = 1;
  #pending = new Map();
  #failure = null;
  #onCrash;
  #request = null;
  #key = null;
  #keepAlive = null;

  /** `onCrash(error)` runs once if the service worker stops answering. */
  constructor(worker, onCrash = () => {}) {
    this.#worker = worker;
    this.#onCrash = onCrash;
    if (typeof document !== 'undefined') {
      this.#keepAlive = setInterval(() => {
        if (document.visibilityState === 'visible') this.#send('ping', [], HOST_CALL_MS).catch(() => {});
      }, KEEP_ALIVE_MS);
    }
  }

  async call(op, ...args) {
    if (op === 'load') this.#request = args[0];
    try {
      return await this.#send(op, args, op === 'load' ? HOST_LOAD_MS : HOST_CALL_MS);
    } catch (error) {
      if (error.name !== 'NotLoadedError' || op === 'load' || !this.#request) throw error;
      // The browser stopped the service worker between calls: load again
      // (from the HTTP cache and the stored history), then ask once more.
      await this.#send('load', [this.#request], HOST_LOAD_MS);
      return this.#send(op, args, HOST_CALL_MS);
    }
  }

  #send(op, args, timeoutMs) {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const { port1, port2 } = new MessageChannel();
      const settle = () => {
        this.#pending.delete(id);
        clearTimeout(timer);
        port1.close();
      };
      const timer = setTimeout(() => {
        settle();
        this.#fail(namedError('WorkerError', `the ranker's service worker did not answer '${op}' within ${timeoutMs / 1000} s`));
        reject(this.#failure);
      }, timeoutMs);
      port1.onmessage = ({ data }) => {
        settle();
        if (!data?.ok) return reject(namedError(data?.error?.name ?? 'Error', data?.error?.message ?? 'the ranker failed'));
        if (op === 'load') this.#key = data.value?.key ?? null;
        resolve(data.value);
      };
      this.#pending.set(id, { reject, settle });
      try {
        this.#worker.postMessage({ shelfrank: HOST_VERSION, id, key: this.#key, op, args }, [port2]);
      } catch (error) {
        settle();
        reject(namedError('DataCloneError', `cannot send to the ranker: ${asError(error).message}`));
      }
    });
  }

  #fail(error) {
    if (this.#failure) return;
    this.#failure = error;
    this.#stop();
    this.#onCrash(error);
  }

  #stop() {
    clearInterval(this.#keepAlive);
    for (const call of [...this.#pending.values()]) {
      call.settle();
      call.reject(this.#failure);
    }
  }

  /** Stops listening; the service worker and its engine stay for other pages. */
  terminate() {
    if (this.#failure) return;
    this.#failure = namedError('DestroyedError', 'the ranker was destroyed');
    this.#stop();
  }
}

function privacySignal() {
  const nav = globalThis.navigator;
  return nav?.globalPrivacyControl === true || nav?.doNotTrack === '1' || globalThis.doNotTrack === '1';
}

function withTimeout(promise, ms, onLate) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(onLate()), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Starts loading at once and returns the reranker; never throws. */
export function createReranker(options = {}) {
  return new Reranker(options ?? {});
}

/** Like createReranker, but resolves once loaded and rejects if it cannot load. */
export async function loadReranker(options = {}) {
  const reranker = createReranker(options);
  await reranker.ready;
  return reranker;
}

/** A ranker bound to this page's shopper. */
export class Reranker {
  #options;
  #transport = null;
  #status = 'loading';
  #backend = null;
  #modelInfo = null;
  #storage = 'none';
  #consented;
  #signal;
  #queue = [];
  #inFlight = 0;
  #stops = [];
  #budgetMs;
  #restarts = 0;
  /** The ranker's own { maxCandidates, maxTextBytes }, known once loaded. */
  #limits = null;
  /** The last list the ranker took from this page: `{ transport, plain, key }`. */
  #lastSent = null;

  constructor(options) {
    this.#options = options;
    this.#budgetMs = Number.isFinite(options.budgetMs) && options.budgetMs >= 0 ? options.budgetMs : 50;
    this.#consented = options.consent !== 'required';
    this.#signal = options.respectPrivacySignals !== false && privacySignal();
    this.ready = this.#load();
    this.ready.catch(() => {}); // the page may never look; a failed load is already reported
    this.#startCapture();
  }

  async #load(afterCrash = false) {
    const started = performance.now();
    const { modelUrl, tokenizerUrl, wasmUrl, webgpuWasmUrl, packageUrl, history, persist = true, storageName = 'shelfrank' } = this.#options;
    // After a crash the ranker comes back on the CPU: the GPU may be why.
    const backend = afterCrash ? 'cpu' : (this.#options.backend ?? 'auto');
    try {
      // The package's own files: next to this module, or under packageUrl.
      const defaults = packageUrl === undefined || packageUrl === null ? defaultModelUrls() : packageFiles(packageUrl);
      const dedicated = () => {
        try {
          return this.#options.worker === false ? new LocalTransport() : new WorkerTransport(defaults.workerUrl, (error) => this.#crashed(error));
        } catch (error) {
          // No workers here (or a policy forbids them): run on the page.
          this.#report(asError(error), 'load');
          return new LocalTransport();
        }
      };
      // With `serviceWorker`, the engine lives in a service worker that
      // outlives page views; until it is there (a first visit), in this
      // page's own worker, and the service worker is warmed for the next page.
      let host = null;
      const { serviceWorker } = this.#options;
      // Relative to the page, as the page's own fetch of it reads it (a worker would read it relative to its script).
      const modelHref = absolute(modelUrl ?? defaults.modelUrl);
      if (serviceWorker && !afterCrash && this.#options.worker !== false) {
        // Not a literal `new URL('./…', import.meta.url)`: a bundler would emit the file on its own, without the
        // modules it imports. Bundled, `true` finds no host (a 404): pass its URL, or use packageUrl.
        const url = typeof serviceWorker === 'string' || serviceWorker instanceof URL ? serviceWorker : (defaults.serviceWorkerUrl ?? new URL(SERVICE_WORKER_FILE, import.meta.url));
        host = await serviceWorkerHost(url).catch((error) => {
          this.#report(asError(error), 'load');
          return null;
        });
      }
      if (host && !host.worker) {
        // A first visit (or a new version): the service worker is
        // installing. This page does not wait for it (that was ~100 ms of
        // its first rerank): its own worker serves, and once this page has
        // loaded, the service worker loads the engine for the next page
        // view. A registration that fails is reported at once.
        host.activated.catch((error) => {
          this.#report(asError(error), 'load');
          this.#metric({ type: 'fallback', from: 'service-worker', to: 'worker', error: asError(error).name });
        });
      }
      // destroy() may have come while the service worker was looked up: start nothing then.
      if (this.#status === 'destroyed') throw namedError('DestroyedError', 'the ranker was destroyed while loading');
      // This page's own engine: its worker starts tens of ms from now (more
      // on a busy page), so the page fetches the model now and hands the
      // bytes over (one download, even where the server forbids caching).
      const fetching = !host?.worker && typeof globalThis.fetch === 'function';
      let pageModel = fetching ? fetchModel(modelHref) : null;
      // Likewise the CPU build's wasm (the one a load starts with, unless
      // WebGPU is asked for), compiled here and handed over as a module.
      // The literal URL names the file next to the engine's, for bundlers.
      // Not where this session's page policy already refused WebAssembly
      // and a worker will run the engine (it compiles under its own policy).
      const refusedHere = this.#options.worker !== false && sessionFlag();
      let pageWasm = fetching && backend !== 'webgpu' && !refusedHere ? compileWasm(absolute(wasmUrl ?? defaults.wasmUrl ?? new URL('./pkg-cpu/shelfrank_bg.wasm', import.meta.url))) : null;
      const load = (transport) => {
        // Only what is given: a service worker keys its engines by the request.
        const given = { ...(pageModel && { modelFromPage: true }), ...(pageWasm && { wasmFromPage: true }) };
        const loading = transport.call('load', { ...request, ...given });
        pageModel?.then((bytes) => transport.call('provideModel', bytes)).catch(() => {});
        // A module the worker cannot receive (no structured clone for it there) is fetched by the worker instead.
        pageWasm?.then((module) => transport.call('provideWasm', module).catch(() => transport.call('provideWasm', null))).catch(() => {});
        return loading;
      };
      this.#transport = host?.worker ? new ServiceWorkerTransport(host.worker, (error) => this.#status === 'ready' && this.#crashed(error)) : dedicated();
      const optional = (url) => (url === undefined ? undefined : String(url));
      const request = {
        modelUrl: modelHref,
        // Fetched only when given: the model file carries its tokenizer.
        tokenizerUrl: optional(tokenizerUrl),
        wasmUrl: optional(wasmUrl ?? defaults.wasmUrl),
        webgpuWasmUrl: optional(webgpuWasmUrl ?? defaults.webgpuWasmUrl),
        allowFallbackAdapter: this.#options.allowFallbackAdapter === true,
        backend,
        history,
        persist,
        storageName,
        storage: this.recording,
      };
      let loaded;
      try {
        loaded = await load(this.#transport);
      } catch (error) {
        if (this.#transport instanceof ServiceWorkerTransport && this.#status !== 'destroyed') {
          // The service worker could not serve (it failed, or did not answer): this page's own worker does.
          this.#report(asError(error), 'load');
          this.#metric({ type: 'fallback', from: 'service-worker', to: 'worker', error: asError(error).name });
          // It may be a stale copy from an earlier package (its glue no longer fits the wasm): fetch it anew for the next page view.
          host.registration?.update().catch(() => {});
          this.#transport.terminate();
          this.#transport = dedicated();
          loaded = await load(this.#transport);
        } else {
          if (!(this.#transport instanceof WorkerTransport && this.#transport.unloadable) || this.#status === 'destroyed') throw error;
          // The worker's script never ran (a 404, a wrong MIME type, a
          // bundler that did not emit it): run on the page's thread instead.
          this.#report(asError(error), 'load');
          this.#metric({ type: 'fallback', from: 'worker', to: 'page', error: asError(error).name });
          this.#transport = new LocalTransport();
          loaded = await load(this.#transport);
        }
      }
      pageModel = pageWasm = null; // the engine has its copies
      if (this.#status === 'destroyed') throw namedError('DestroyedError', 'the ranker was destroyed while loading');
      this.#backend = loaded.backend;
      this.#modelInfo = loaded.modelInfo;
      this.#limits = loaded.limits;
      this.#storage = loaded.storage;
      this.#status = 'ready';
      if (loaded.fallback) this.#metric({ type: 'fallback', from: loaded.fallback.from, to: loaded.fallback.to, error: loaded.fallback.error });
      for (const warning of loaded.warnings ?? []) this.#report(namedError(warning.name, warning.message), warning.during ?? 'restore');
      const queued = this.#queue.splice(0);
      for (const event of queued) this.#send(event);
      this.#metric({
        type: 'load',
        backend: loaded.backend.name,
        ms: performance.now() - started,
        ok: true,
        worker: this.#transport instanceof WorkerTransport,
        // Where the engine runs: 'service-worker' (then `shared`: loaded by an earlier page view), 'worker' or 'page'.
        host: this.#transport instanceof ServiceWorkerTransport ? 'service-worker' : this.#transport instanceof WorkerTransport ? 'worker' : 'page',
        ...(this.#transport instanceof ServiceWorkerTransport ? { shared: loaded.shared === true } : {}),
        restoredEvents: loaded.restoredEvents,
        // Where the time went, in ms from the start of the engine's load to the end of each step (the
        // wasm, model, tokenizer and adapter probe run side by side; then the ranker, then the stored
        // history); `ms` minus the last is the worker's start-up and messaging.
        stages: loaded.stages ?? {},
        // Where the engine's wasm came from: 'page' (compiled by this page while the worker started), 'fetched' (by the engine).
        wasmFrom: loaded.wasmFrom ?? null,
        ...(afterCrash ? { afterCrash: true } : {}),
      });
      if (host?.activated && !(this.#transport instanceof ServiceWorkerTransport)) this.#warmHost(host.activated, request);
      return loaded.backend;
    } catch (error) {
      const e = asError(error);
      if (this.#status !== 'destroyed') this.#status = 'failed';
      this.#queue = [];
      this.#metric({ type: 'load', backend: null, ms: performance.now() - started, ok: false, error: e.name, worker: this.#transport instanceof WorkerTransport, restoredEvents: 0 });
      this.#report(e, 'load');
      throw e;
    }
  }

  /**
   * A first visit: this page runs on its own worker; the service worker,
   * once installed, loads the same model in the background (a moment
   * after this page's load, which keeps the CPU for this page's first
   * rerank), so the next page view finds it ready. Nothing of it reaches this page but a report if it fails.
   */
  #warmHost(activated, request) {
    const warm = async () => {
      const worker = await activated;
      if (this.#status === 'destroyed') return;
      const started = performance.now();
      const transport = new ServiceWorkerTransport(worker);
      try {
        await transport.call('load', request);
        this.#metric({ type: 'warm', host: 'service-worker', ms: performance.now() - started, ok: true });
      } catch (error) {
        this.#metric({ type: 'warm', host: 'service-worker', ms: performance.now() - started, ok: false, error: asError(error).name });
        throw error;
      } finally {
        transport.terminate();
      }
    };
    // A failed registration was reported when it failed.
    setTimeout(() => warm().catch((error) => activated.then(() => this.#report(asError(error), 'load'), () => {})), HOST_WARM_DELAY_MS);
  }

  /** The worker died: report it, and start a new one on the CPU (a few times at most). */
  #crashed(error) {
    this.#report(error, 'worker');
    if (this.#status !== 'ready' && this.#status !== 'loading') return;
    if (this.#restarts >= MAX_RESTARTS) {
      this.#status = 'failed';
      return;
    }
    this.#restarts++;
    this.#metric({ type: 'fallback', from: this.#backend?.name ?? 'worker', to: 'cpu', error: error.name });
    this.#status = 'loading';
    this.ready = this.#load(true);
    this.ready.catch(() => {});
  }

  #startCapture() {
    if (typeof document === 'undefined') return;
    const record = (event) => this.record(event);
    const dom = this.#options.captureDom ?? true;
    if (dom) {
      const settings = typeof dom === 'object' ? dom : {};
      this.#stops.push(captureDom(record, settings));
    }
    const dataLayer = this.#options.dataLayer === undefined ? (globalThis.dataLayer ??= []) : this.#options.dataLayer;
    if (Array.isArray(dataLayer)) this.#stops.push(captureDataLayer(record, dataLayer));
  }

  /** 'loading', 'ready', 'failed' or 'destroyed'. */
  get status() {
    return this.#status;
  }

  /** Which backend runs the model ({ name, adapter?, reason }); null until ready. */
  get backend() {
    return this.#backend;
  }

  /** The model's configuration and training facts; null until ready. */
  get modelInfo() {
    return this.#modelInfo;
  }

  /** Whether events are recorded now: consent given and no privacy signal. */
  get recording() {
    return this.#consented && !this.#signal && this.#status !== 'destroyed' && this.#status !== 'failed';
  }

  /** Records one shopper event. Returns false when it is not recorded. */
  record(event) {
    if (!this.recording) return false;
    if (!event || typeof event !== 'object' || !EVENT_TYPES.has(event.type)) {
      this.#report(namedError('InvalidEventError', `an event needs a 'type' of ${[...EVENT_TYPES].join(', ')}`), 'record');
      return false;
    }
    // Only the fields an event has: anything else the page attached (a DOM
    // node, a function) could not be copied to the worker.
    const stamped = { ...plainEvent(event), timestamp: Number.isFinite(event.timestamp) ? event.timestamp : Date.now() };
    if (this.#status === 'ready') {
      this.#send(stamped);
    } else {
      if (this.#queue.length >= MAX_QUEUED_EVENTS) this.#queue.shift();
      this.#queue.push(stamped);
    }
    return true;
  }

  #send(event) {
    this.#transport.call('record', event).then(
      // Storing it failed (quota, storage gone): the engine carries on in memory.
      (result) => {
        for (const warning of result?.warnings ?? []) this.#report(namedError(warning.name, warning.message), warning.during ?? 'store');
      },
      (error) => this.#report(asError(error), 'record'),
    );
  }

  /**
   * With backend 'auto' on a device with a GPU: resolves once WebGPU has
   * been measured against the CPU, with { choice, cpuMs, gpuMs } (null when
   * there was nothing to measure). The backend then serving is `backend`.
   */
  async calibration() {
    await this.ready.catch(() => {});
    if (this.#status !== 'ready') return null;
    const verdict = await this.#transport.call('calibration');
    this.#backend = await this.#transport.call('backend');
    return verdict;
  }

  /** Grants or withdraws consent; withdrawing erases everything stored. */
  async setConsent(granted) {
    this.#consented = Boolean(granted);
    if (!granted) {
      await this.forget();
    }
    await this.ready.catch(() => {});
    if (this.#status !== 'ready') return;
    const result = await this.#transport.call('setStorage', this.recording);
    this.#storage = result.storage;
    for (const warning of result.warnings ?? []) this.#report(namedError(warning.name, warning.message), warning.during ?? 'restore');
  }

  /** The stored events, oldest first ([] if the ranker could not load). */
  async history() {
    await this.ready.catch(() => {});
    if (this.#status !== 'ready') return [];
    return this.#transport.call('history');
  }

  /** Numbers for monitoring: { historyLength, wasmMemoryBytes, backend } (null if the ranker could not load). */
  async stats() {
    await this.ready.catch(() => {});
    if (this.#status !== 'ready') return null;
    return this.#transport.call('stats');
  }

  /** Everything stored about this shopper, as plain JSON. */
  async exportHistory() {
    await this.ready.catch(() => {});
    if (this.#status !== 'ready') {
      return { format: 'shelfrank-history', version: 1, exportedAt: new Date().toISOString(), storage: 'none', events: [] };
    }
    return this.#transport.call('exportHistory');
  }

  /** Erases the history from memory and from storage. */
  async forget() {
    this.#queue = [];
    sessionFlag(false);
    if (!this.#transport || this.#status === 'destroyed') return;
    // Wait for a load under way, so the engine knows its database.
    if (this.#status === 'loading') await this.ready.catch(() => {});
    await this.#transport.call('forget', this.#options.storageName ?? 'shelfrank');
  }

  /**
   * Reorders candidates (in server order). Never throws: resolves with
   * { items, ranking, fallback, error?, backend, ms }, where `items` are the
   * caller's own candidate objects in their new order (the server's order
   * when `fallback` is true).
   */
  async rerank(candidates, options = {}) {
    const started = performance.now();
    const { budgetMs = this.#budgetMs, surface, serverWeight, explain, repeats } = options ?? {};
    const serverOrder = Array.isArray(candidates) ? [...candidates] : [];
    let historyEvents = 0;
    const done = (result) => {
      result.ms = performance.now() - started;
      result.backend = this.#backend?.name ?? null;
      this.#metric({
        type: 'rerank',
        surface: typeof surface === 'string' ? surface : undefined,
        backend: result.backend,
        candidates: serverOrder.length,
        historyEvents,
        ms: result.ms,
        fallback: result.fallback,
        reason: result.error?.name,
      });
      return result;
    };
    try {
      if (!Array.isArray(candidates)) throw namedError('InvalidCandidateError', 'candidates must be an array of { id, title, ... } objects');
      const limited = Number.isFinite(budgetMs) && budgetMs > 0;
      const deadline = limited ? Date.now() + budgetMs : 0;
      const rankOptions = {};
      if (serverWeight !== undefined) rankOptions.serverWeight = serverWeight;
      if (explain) rankOptions.explain = true;
      if (repeats !== undefined) rankOptions.repeats = repeats;
      let plain = null;
      const work = this.#rerankWhenReady(candidates, rankOptions, deadline, (p) => {
        plain = p;
      });
      const value = limited
        ? await withTimeout(work, budgetMs, () =>
            this.#status === 'loading'
              ? namedError('NotReadyError', `the model was still loading after ${budgetMs} ms; kept the server order`)
              : namedError('TimeoutError', `the ranker took longer than ${budgetMs} ms; kept the server order`),
          )
        : await work;
      historyEvents = value.historyEvents;
      if (value.backend) this.#backend = value.backend; // calibration may have moved to WebGPU
      if (value.recovered) {
        // The GPU failed (device lost): this answer came from the CPU, which serves from now on.
        this.#metric({ type: 'fallback', from: value.recovered.from, to: value.recovered.to, error: value.recovered.error });
      }
      const ranking = unpackRanking(plain, value.packed);
      const items = ranking.map((r) => candidates[r.originalPosition]);
      return done({ items, ranking, fallback: false });
    } catch (error) {
      const e = asError(error);
      this.#report(e, 'rerank');
      return done({ items: serverOrder, ranking: null, fallback: true, error: e });
    }
  }

  /** Sends the candidates once the ranker is loaded; `onPlain` gets the plain copy the answer indexes into. */
  async #rerankWhenReady(candidates, options, deadline, onPlain) {
    if (this.#status === 'loading') await this.ready;
    if (this.#status !== 'ready') throw namedError('NotReadyError', `the ranker is ${this.#status}`);
    if (this.#inFlight >= MAX_IN_FLIGHT) throw namedError('BusyError', `${MAX_IN_FLIGHT} reranks are already waiting; kept the server order`);
    const plain = plainCandidates(candidates, this.#limits);
    onPlain(plain);
    this.#inFlight++;
    const transport = this.#transport;
    const sent = this.#lastSent;
    try {
      let value = null;
      // The same list as the last one the ranker took (a list re-rendered,
      // a tab shown again): it is reranked from the ranker's own copy, and
      // only when it no longer holds it is the list sent again.
      if (sent?.transport === transport && sameCandidates(sent.plain, plain)) {
        value = await transport.call('rerank', null, options, deadline, sent.key);
      }
      if (!value || value.resend) {
        // One string crosses to the worker (a copy of bytes, not of thousands
        // of objects), and goes into wasm as it is.
        let json;
        try {
          json = JSON.stringify(plain);
        } catch (error) {
          throw namedError('InvalidCandidateError', `the candidates cannot be read: ${asError(error).message}`);
        }
        const key = `${LIST_KEY_PREFIX}${++listCount}`;
        value = await transport.call('rerank', json, options, deadline, key);
        if (!value.skipped) this.#lastSent = { transport, plain, key };
      }
      if (value.skipped) throw namedError('TimeoutError', 'the ranker reached this request after its budget; kept the server order');
      return value;
    } catch (error) {
      this.#lastSent = null;
      throw error;
    } finally {
      this.#inFlight--;
    }
  }

  /** Like rerank, but rejects on error and has no budget. */
  async rerankStrict(candidates, options = {}) {
    const { serverWeight, explain, repeats } = options ?? {};
    const rankOptions = {};
    if (serverWeight !== undefined) rankOptions.serverWeight = serverWeight;
    if (explain) rankOptions.explain = true;
    if (repeats !== undefined) rankOptions.repeats = repeats;
    let plain = null;
    const value = await this.#rerankWhenReady(candidates, rankOptions, 0, (p) => {
      plain = p;
    });
    return unpackRanking(plain, value.packed);
  }

  /** A one-line reason for a ranked item ("Because you viewed …"), or null. */
  explain(item) {
    const reason = item?.reason;
    if (!reason) return null;
    const quote = (text) => `“${text.length > 60 ? text.slice(0, 57).trimEnd() + '…' : text}”`;
    if (reason.type === 'search') return reason.query ? `Because you searched for ${quote(reason.query)}` : null;
    const what = reason.title ? quote(reason.title) : 'an item';
    switch (reason.type) {
      case 'add_to_cart':
        return `Because you added ${what} to your cart`;
      case 'purchase':
        return `Because you bought ${what}`;
      case 'click':
      case 'view':
        return `Because you viewed ${what}`;
      default:
        return null;
    }
  }

  /** Reranks a server-rendered list in place and keeps it personalised. */
  attach(list, options = {}) {
    if (!list || typeof list.children === 'undefined') {
      // Never throws: report it and hand back a handle that does nothing.
      const error = namedError('InvalidOptionError', 'attach needs the list element');
      this.#report(error, 'attach');
      const result = { items: [], ranking: null, fallback: true, error, backend: null, ms: 0 };
      return { element: list ?? null, lastResult: null, refresh: async () => result, restore() {}, detach() {} };
    }
    return new AttachedList(this, list, options, this.#options.loadWaitMs ?? 3000);
  }

  /** Stops the worker and every listener. */
  destroy() {
    for (const stop of this.#stops.splice(0)) stop();
    this.#transport?.terminate();
    this.#status = 'destroyed';
    this.#queue = [];
  }

  /** Reports a swallowed error to onError and, without its message, to onMetrics. */
  #report(error, during) {
    this.#metric({ type: 'error', error: error.name, during });
    if (this.#options.onError) {
      try {
        this.#options.onError(error);
      } catch {
        // A faulty handler must not break the page either.
      }
    }
  }

  #metric(metrics) {
    if (!this.#options.onMetrics) return;
    try {
      this.#options.onMetrics(metrics);
    } catch {
      // Same: monitoring never breaks the page.
    }
  }
}

/** A server-rendered list that the reranker reorders in place. */
class AttachedList {
  #reranker;
  #options;
  #loadWaitMs;
  #serverOrder;
  #generation = 0;
  #detached = false;
  /** The list came with `data-shelfrank-hold`: its first order is settled before it is shown. */
  #holding;
  lastResult = null;

  constructor(reranker, element, options, loadWaitMs) {
    if (!element || typeof element.children === 'undefined') throw namedError('InvalidOptionError', 'attach needs the list element');
    this.element = element;
    this.#reranker = reranker;
    this.#options = { itemSelector: '[data-shelfrank-id]', ...options };
    this.#loadWaitMs = loadWaitMs;
    this.#serverOrder = this.#items();
    const { surface, query } = this.#options;
    if (surface === 'search' && typeof query === 'string' && query.trim()) {
      reranker.record({ type: 'search', query: query.trim() });
    }
    element.setAttribute('data-state', 'server');
    this.#holding = element.hasAttribute('data-shelfrank-hold');
    this.refresh();
  }

  /** Shows a held list (whatever its order now); it never moves on its own after that. */
  #release() {
    this.#holding = false;
    this.element.removeAttribute('data-shelfrank-hold');
  }

  #items() {
    return [...this.element.children].filter((el) => el.matches(this.#options.itemSelector));
  }

  /** Reranks the list again (after new events, or new server content). */
  async refresh() {
    const generation = ++this.#generation;
    const current = this.#items();
    // New nodes mean the server re-rendered the list: that is the new server order.
    const known = new Set(this.#serverOrder);
    if (current.length !== known.size || current.some((el) => !known.has(el))) this.#serverOrder = current;
    const candidates = this.#serverOrder.map((element) => ({ ...itemFromElement(element), element }));
    const { explain, serverWeight, repeats, surface, onRerank } = this.#options;
    let { budgetMs } = this.#options;
    // A held list (data-shelfrank-hold: hidden, its space reserved) gets
    // holdMs from attach for loading and its first rerank together, then
    // shows in whatever order it has: no reshuffle after it is seen.
    const holding = this.#holding;
    const holdUntil = performance.now() + (Number.isFinite(this.#options.holdMs) ? Math.max(0, this.#options.holdMs) : 250);
    const left = () => Math.max(1, holdUntil - performance.now());
    // The first rerank may wait for the model to load, up to loadWaitMs;
    // after that the list stays as the server sent it.
    if (this.#reranker.status === 'loading') {
      const wait = holding ? left() : this.#loadWaitMs;
      await withTimeout(this.#reranker.ready, wait, () => namedError('NotReadyError', 'still loading')).catch(() => {});
    }
    if (holding) budgetMs = Math.min(Number.isFinite(budgetMs) && budgetMs > 0 ? budgetMs : Infinity, left());
    const result = await this.#reranker.rerank(candidates, { explain, budgetMs, serverWeight, repeats, surface });
    if (generation !== this.#generation || this.#detached) {
      if (holding) this.#release();
      return result;
    }
    if (!result.fallback) {
      this.#apply(result.items.map((c) => c.element));
      if (explain) {
        for (const [i, ranked] of result.ranking.entries()) this.#writeReason(result.items[i].element, this.#reranker.explain(ranked));
      }
      this.element.setAttribute('data-state', 'reranked');
    }
    if (holding) this.#release();
    this.lastResult = result;
    if (onRerank) {
      try {
        onRerank(result);
      } catch {
        // The page's callback must not break the list.
      }
    }
    return result;
  }

  #writeReason(el, text) {
    if (text) el.setAttribute('data-shelfrank-reason', text);
    else el.removeAttribute('data-shelfrank-reason');
    for (const slot of el.querySelectorAll('[data-shelfrank-slot="reason"]')) slot.textContent = text ?? '';
  }

  /** Moves the nodes into `order` in one go: no node is re-created, so handlers, state and focus survive. */
  #apply(order) {
    const list = this.element;
    const current = this.#items();
    if (order.length !== current.length || order.some((el) => el.parentNode !== list)) return;
    const focused = list.ownerDocument.activeElement;
    const move = typeof list.moveBefore === 'function' ? (node, ref) => list.moveBefore(node, ref) : (node, ref) => list.insertBefore(node, ref);
    // The item slots stay where they are among any other children.
    const slots = current.slice();
    for (let i = 0; i < order.length; i++) {
      if (slots[i] === order[i]) continue;
      move(order[i], slots[i]);
      slots.splice(slots.indexOf(order[i]), 1);
      slots.splice(i, 0, order[i]);
    }
    if (focused && focused !== list.ownerDocument.activeElement && focused.isConnected) focused.focus({ preventScroll: true });
  }

  /** Puts the nodes back in the server's order. */
  restore() {
    this.#generation++;
    if (this.#holding) this.#release();
    this.#apply(this.#serverOrder);
    for (const el of this.#serverOrder) this.#writeReason(el, null);
    this.element.setAttribute('data-state', 'server');
  }

  /** Restores the server order and stops managing the list. */
  detach() {
    this.restore();
    this.#detached = true;
  }
}
