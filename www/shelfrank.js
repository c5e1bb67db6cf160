// shelfrank: on-device reranking of a storefront's candidate lists.
//
// The shim fetches the model and tokenizer bytes, hands them to the wasm
// `Ranker`, and wraps `rerank` so that it never throws into the page: on any
// error or overrun the server's order comes back, with the reason.
import init, { Ranker } from './pkg/shelfrank.js';

const here = import.meta.url;
let wasmReady = null;

/** Loads the wasm module once per page. */
function loadWasm(wasmUrl) {
  if (!wasmReady) {
    wasmReady = init(wasmUrl ? { module_or_path: wasmUrl } : undefined).catch((error) => {
      wasmReady = null;
      throw error;
    });
  }
  return wasmReady;
}

async function fetchBytes(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw namedError('FetchError', `cannot fetch the ${what} from ${url}: ${error.message}`);
  }
  if (!response.ok) {
    throw namedError('FetchError', `cannot fetch the ${what} from ${url}: HTTP ${response.status}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

function namedError(name, message) {
  const error = new Error(message);
  error.name = name;
  return error;
}

/** The model and tokenizer URLs named by the package's models/manifest.json. */
export async function defaultModelUrls() {
  const manifestUrl = new URL('../models/manifest.json', here);
  const response = await fetch(manifestUrl);
  if (!response.ok) throw namedError('FetchError', `cannot fetch ${manifestUrl}: HTTP ${response.status}`);
  const manifest = await response.json();
  return {
    modelUrl: new URL(manifest.model.file, manifestUrl).href,
    tokenizerUrl: new URL(manifest.tokenizer.file, manifestUrl).href,
  };
}

/**
 * Loads the ranker. Rejects with a named error (ModelFileError,
 * TokenizerError, BackendError, FetchError, InvalidOptionError) when it
 * cannot; a page should then simply keep its server order.
 */
export async function createReranker(options = {}) {
  const { backend = 'auto', history, wasmUrl } = options;
  let { modelUrl, tokenizerUrl } = options;
  if (!modelUrl || !tokenizerUrl) {
    const defaults = await defaultModelUrls();
    modelUrl ??= defaults.modelUrl;
    tokenizerUrl ??= defaults.tokenizerUrl;
  }
  const [, modelBytes, tokenizerBytes] = await Promise.all([
    loadWasm(wasmUrl),
    fetchBytes(modelUrl, 'model'),
    fetchBytes(tokenizerUrl, 'tokenizer'),
  ]);
  const loadOptions = history === undefined ? { backend } : { backend, history };
  const ranker = await Ranker.load(modelBytes, tokenizerBytes, loadOptions);
  return new Reranker(ranker, options);
}

/** A ranker bound to this page's shopper. */
export class Reranker {
  #ranker;
  #onError;
  #backend;

  constructor(ranker, { onError } = {}) {
    this.#ranker = ranker;
    this.#onError = onError;
    // Fixed at load: read once, not on every rerank.
    this.#backend = ranker.backend;
  }

  /** Which backend runs the model ({ name, adapter?, reason }). */
  get backend() {
    return this.#backend;
  }

  /** The model's configuration and training facts. */
  get modelInfo() {
    return this.#ranker.modelInfo;
  }

  /** Records one shopper event. Returns false (and reports) if it is malformed. */
  record(event) {
    try {
      this.#ranker.record(event);
      return true;
    } catch (error) {
      this.#report(error);
      return false;
    }
  }

  /** The stored events, oldest first. */
  history() {
    return this.#ranker.history();
  }

  /** Erases the stored history. */
  forget() {
    this.#ranker.forget();
  }

  /**
   * Reorders candidates (in server order). Never throws: resolves with
   * { items, ranking, fallback, error?, backend, ms }, where `items` are the
   * caller's own candidate objects in their new order (the server's order
   * when `fallback` is true).
   */
  async rerank(candidates, options = {}) {
    const started = performance.now();
    const { timeoutMs = 0, ...rankOptions } = options ?? {};
    const serverOrder = Array.isArray(candidates) ? [...candidates] : [];
    const fallback = (error) => {
      this.#report(error);
      return { items: serverOrder, ranking: null, fallback: true, error, backend: this.#backend.name, ms: performance.now() - started };
    };
    try {
      const work = this.#ranker.rerank(candidates, rankOptions);
      const ranking = timeoutMs > 0 ? await withTimeout(work, timeoutMs) : await work;
      const items = ranking.map((r) => candidates[r.originalPosition]);
      return { items, ranking, fallback: false, backend: this.#backend.name, ms: performance.now() - started };
    } catch (error) {
      return fallback(error instanceof Error ? error : namedError('Error', String(error)));
    }
  }

  /** Like rerank, but rejects on error instead of falling back. */
  rerankStrict(candidates, options) {
    return this.#ranker.rerank(candidates, options);
  }

  #report(error) {
    if (this.#onError) {
      try {
        this.#onError(error);
      } catch {
        // A faulty handler must not break the page either.
      }
    }
  }
}

function withTimeout(promise, ms) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(namedError('TimeoutError', `the ranker took longer than ${ms} ms; kept the server order`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

export { Ranker };
