import type { BackendInfo, Candidate, HistoryReason, LoadOptions, RankedItem, RerankOptions as CoreRerankOptions, SessionEvent } from './pkg-cpu/shelfrank.js';

export type {
  AdapterInfo,
  BackendChoice,
  BackendInfo,
  Candidate,
  EventType,
  HistoryReason,
  LoadOptions,
  RankedItem,
  SessionEvent,
} from './pkg-cpu/shelfrank.js';

/** Where a list sits in the shop; reported in metrics, and 'search' lists record their query. */
export type Surface = 'search' | 'recommendations' | 'popular' | 'campaign' | (string & {});

/** What the package reports for monitoring: never an item id, title, query or history. */
export type Metrics =
  | {
      type: 'load';
      backend: 'webgpu' | 'cpu' | null;
      ms: number;
      ok: boolean;
      error?: string;
      worker: boolean;
      /** Where the engine runs: a service worker shared by page views (`serviceWorker`), this page's Web Worker, or its thread. */
      host: 'service-worker' | 'worker' | 'page';
      /** With `host: 'service-worker'`: the engine was already loaded by an earlier page view. */
      shared?: boolean;
      /** ms from the start of the engine's load to the end of each step (wasm, model, adapter, ranker, storage; tokenizer when tokenizerUrl is given; resync for a shared engine). */
      stages?: Record<string, number>;
      /** Where the engine's wasm came from when it loaded: compiled by the page while the worker started ('page'), or fetched by the engine itself. */
      wasmFrom?: 'page' | 'fetched' | null;
      restoredEvents: number;
      /** This load restarted the ranker (on the CPU) after its worker crashed. */
      afterCrash?: boolean;
    }
  | {
      /**
       * The ranker moved to the CPU: WebGPU failed (device lost, out of memory), or the worker crashed and was restarted
       * (`to: 'cpu'`); or the worker's script could not load (404, wrong MIME type, blocked) and the ranker runs on the
       * page's thread instead (`from: 'worker', to: 'page'`); or the service worker (`serviceWorker`) could not be
       * registered, installed or reached, and this page's own worker serves (`from: 'service-worker', to: 'worker'`).
       */
      type: 'fallback';
      from: 'webgpu' | 'cpu' | 'worker' | 'service-worker';
      to: 'cpu' | 'page' | 'worker';
      /** The failure's error name. */
      error: string;
    }
  | {
      /**
       * A first visit with `serviceWorker`: this page ran on its own worker, and the service worker has now loaded the
       * engine for the next page views (a moment after this page's load), or failed to (`ok: false`, `error`).
       */
      type: 'warm';
      host: 'service-worker';
      ms: number;
      ok: boolean;
      error?: string;
    }
  | {
      type: 'rerank';
      surface?: string;
      backend: 'webgpu' | 'cpu' | null;
      candidates: number;
      historyEvents: number;
      ms: number;
      fallback: boolean;
      /** Error name when `fallback` is true (TimeoutError, NotReadyError, InvalidCandidateError, ...). */
      reason?: string;
    }
  | {
      type: 'error';
      /** The error's name, never its message (TimeoutError, QuotaExceededError, StorageError, ...). */
      error: string;
      /**
       * 'load', 'record', 'rerank', 'attach' (no list element), 'worker' (it crashed); 'restore': the stored history was corrupted or
       * partly unreadable and what could not be read was dropped; 'store': writing the history failed (e.g.
       * over quota) and it is kept in memory only from then on.
       */
      during: string;
    };

export interface RankerStats {
  historyLength: number;
  /** Bytes of WebAssembly memory the engine holds (it never shrinks; it should stay flat). */
  wasmMemoryBytes: number;
  backend: 'webgpu' | 'cpu' | null;
}

export interface CreateRerankerOptions extends LoadOptions {
  /** URL of the model file; defaults to the one shipped in the package. */
  modelUrl?: string | URL;
  /**
   * URL of the tokenizer.json the model was trained with. Leave it out (the default): model files carry their tokenizer.
   * Needed only for a model file from before they did; one that is not the model's own is refused (TokenizerError).
   */
  tokenizerUrl?: string | URL;
  /**
   * Where the shop serves a copy of the package's folder (`node_modules/shelfrank`), for bundlers that do not follow
   * `new URL('…', import.meta.url)` (esbuild, Rollup): the worker, both wasm builds and the model are
   * then loaded from under it (`www/worker.js`, `models/…`). Relative to the page; the worker must be same-origin.
   * E.g. `'/shelfrank/'` after `cp -R node_modules/shelfrank/. dist/shelfrank`. `modelUrl`, `tokenizerUrl`, `wasmUrl`
   * and `webgpuWasmUrl`, when given, still win.
   */
  packageUrl?: string | URL;
  /** URL of the CPU build's shelfrank_bg.wasm, for bundlers that move it. */
  wasmUrl?: string | URL;
  /** URL of the WebGPU build's shelfrank_bg.wasm (fetched only for a hardware GPU). */
  webgpuWasmUrl?: string | URL;
  /** Testing only: let 'auto' measure a software (fallback) WebGPU adapter too. */
  allowFallbackAdapter?: boolean;
  /** Run the model in a Web Worker (default true); false runs it on the page's thread. */
  worker?: boolean;
  /**
   * For multi-page shops: run the model in a service worker that outlives page views, so every page view after the
   * first finds it loaded (tens of ms instead of hundreds). `true` uses the package's `www/service-worker.js` (next to
   * this module, or under `packageUrl`); a URL names where your site serves that file (same origin). It controls no
   * page and handles no fetch: its scope is its own folder. Until it is active (a first visit) and whenever it
   * cannot be used, the page's own Web Worker serves. Default false.
   */
  serviceWorker?: boolean | string | URL;
  /** Per-rerank latency budget in ms (default 50): later results are dropped and the server order stays. */
  budgetMs?: number;
  /** How long `attach` waits for the model to finish loading before keeping the server order (default 3000 ms). */
  loadWaitMs?: number;
  /** 'required': record nothing and store nothing until `setConsent(true)`. Default 'not-required'. */
  consent?: 'required' | 'not-required';
  /** Honour Global Privacy Control and Do Not Track by recording nothing (default true). */
  respectPrivacySignals?: boolean;
  /** Keep the history in IndexedDB across page loads (default true; memory only when storage is unavailable). */
  persist?: boolean;
  /** IndexedDB database name (default 'shelfrank'). */
  storageName?: string;
  /** Record events from GA4 ecommerce pushes to this array (default `window.dataLayer`; false: off). */
  dataLayer?: unknown[] | false;
  /** Record clicks, add-to-cart, purchases, searches and dwell views from `data-shelfrank-*` markup (default true). */
  captureDom?: boolean | { root?: Document | Element; viewDwellMs?: number };
  /** Monitoring callback; payloads never contain item ids, titles, queries or history. */
  onMetrics?: (metrics: Metrics) => void;
  /** Called with every error the shim swallowed to keep the page working. */
  onError?: (error: Error) => void;
}

export interface RerankOptions extends CoreRerankOptions {
  /** Latency budget for this call (ms); defaults to the reranker's `budgetMs`. 0: no limit. */
  budgetMs?: number;
  /** Reported in metrics. */
  surface?: Surface;
}

export interface RerankResult<T extends Candidate> {
  /** The caller's candidate objects in their new order (server order on fallback). */
  items: T[];
  /** Per-item scores, positions and (with `explain`) reasons; null on fallback. */
  ranking: RankedItem[] | null;
  /** True when the server order was kept because of `error`. */
  fallback: boolean;
  error?: Error;
  backend: 'webgpu' | 'cpu' | null;
  ms: number;
}

export interface AttachOptions extends Omit<RerankOptions, 'surface'> {
  surface: Surface;
  /** The query a search list answers; recorded as a search event once. */
  query?: string;
  /** Write each item's reason into `data-shelfrank-reason` and any `[data-shelfrank-slot="reason"]` inside it. */
  explain?: boolean;
  /** Items are the list's children matching this (default `[data-shelfrank-id]`). */
  itemSelector?: string;
  /** Called after every reorder (or fallback). */
  onRerank?: (result: RerankResult<Candidate & { element: Element }>) => void;
  /**
   * For a list marked `data-shelfrank-hold` (kept hidden by the page's CSS,
   * its space reserved): how long from `attach` loading and the first
   * rerank may take before the list is shown in the server's order
   * (default 250 ms). It is shown as soon as its order is settled and never
   * moves on its own after that.
   */
  holdMs?: number;
}

export interface AttachedList {
  readonly element: Element;
  /** The last result, or null before the first rerank finished. */
  readonly lastResult: RerankResult<Candidate & { element: Element }> | null;
  /** Reranks the list again (after new events, or new server content). */
  refresh(): Promise<RerankResult<Candidate & { element: Element }>>;
  /** Puts the nodes back in the server's order. */
  restore(): void;
  /** Restores the server order and stops managing the list. */
  detach(): void;
}

/** How 'auto' chose: the same fixed inference timed on both backends (median ms). */
export interface Calibration {
  key: string;
  choice: 'webgpu' | 'cpu';
  cpuMs: number;
  gpuMs: number;
  at: number;
}

export interface ExportedHistory {
  format: 'shelfrank-history';
  version: 1;
  exportedAt: string;
  /** Where the events are kept: 'indexeddb' or 'memory'. */
  storage: 'indexeddb' | 'memory' | 'none';
  events: SessionEvent[];
  /** Which backend won on this device (not about the shopper), when stored. */
  device: Calibration | null;
}

export declare class Reranker {
  private constructor();
  /** Resolves with the backend once the model is loaded; rejects with a named error if it cannot load. */
  readonly ready: Promise<BackendInfo>;
  readonly status: 'loading' | 'ready' | 'failed' | 'destroyed';
  /** Null until ready. */
  readonly backend: BackendInfo | null;
  /** The model's configuration and training facts; null until ready. */
  readonly modelInfo: unknown;
  /** Whether events are being recorded now (consent given, no privacy signal). */
  readonly recording: boolean;
  /** Records one shopper event. Returns false when it is not recorded (malformed, no consent, privacy signal). */
  record(event: SessionEvent): boolean;
  /**
   * With backend 'auto' and a GPU: resolves when WebGPU has been measured against the CPU and the verdict's write to
   * storage has succeeded or failed (null if nothing was measured). Loading the WebGPU build compiles every kernel
   * shape first: seconds on a fast GPU, tens of seconds on a software adapter.
   */
  calibration(): Promise<Calibration | null>;
  /** Grants or withdraws consent; withdrawing erases everything stored. */
  setConsent(granted: boolean): Promise<void>;
  /** The stored events, oldest first. */
  history(): Promise<SessionEvent[]>;
  /** Numbers for monitoring (no history content); null if the ranker could not load. */
  stats(): Promise<RankerStats | null>;
  /** Everything stored about this shopper, as plain JSON. */
  exportHistory(): Promise<ExportedHistory>;
  /** Erases the history from memory and from storage. */
  forget(): Promise<void>;
  /** Reorders candidates (in server order). Never throws. */
  rerank<T extends Candidate>(candidates: T[], options?: RerankOptions): Promise<RerankResult<T>>;
  /** Like rerank, but rejects on error and has no budget. */
  rerankStrict(candidates: Candidate[], options?: CoreRerankOptions): Promise<RankedItem[]>;
  /** Reranks a server-rendered list in place and keeps it personalised. */
  attach(list: Element, options: AttachOptions): AttachedList;
  /** A one-line reason for a ranked item ("Because you viewed …"), or null. */
  explain(item: RankedItem): string | null;
  /** Stops the worker and every listener. */
  destroy(): void;
}

/** Starts loading at once and returns the reranker; never throws. */
export declare function createReranker(options?: CreateRerankerOptions): Reranker;
/** Like createReranker, but resolves once loaded and rejects if it cannot load. */
export declare function loadReranker(options?: CreateRerankerOptions): Promise<Reranker>;
/** The URL of the model shipped in the package (it carries its tokenizer). */
export declare function defaultModelUrls(): { modelUrl: string };
