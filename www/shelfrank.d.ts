import type { BackendInfo, Candidate, LoadOptions, RankedItem, RerankOptions as CoreRerankOptions, SessionEvent } from './pkg/shelfrank.js';
import { Ranker } from './pkg/shelfrank.js';

export type { AdapterInfo, BackendChoice, BackendInfo, Candidate, EventType, LoadOptions, RankedItem, SessionEvent } from './pkg/shelfrank.js';
export { Ranker };

export interface CreateRerankerOptions extends LoadOptions {
  /** URL of the model file; defaults to the package's models/manifest.json choice. */
  modelUrl?: string | URL;
  /** URL of the tokenizer.json the model was trained with. */
  tokenizerUrl?: string | URL;
  /** URL of shelfrank_bg.wasm, for bundlers that move it. */
  wasmUrl?: string | URL;
  /** Called with every error the shim swallowed to keep the page working. */
  onError?: (error: Error) => void;
}

export interface RerankOptions extends CoreRerankOptions {
  /** Give up and keep the server order after this many milliseconds (0: no limit). */
  timeoutMs?: number;
}

export interface RerankResult<T extends Candidate> {
  /** The caller's candidate objects in their new order (server order on fallback). */
  items: T[];
  /** Per-item scores and positions, or null on fallback. */
  ranking: RankedItem[] | null;
  /** True when the server order was kept because of `error`. */
  fallback: boolean;
  error?: Error;
  backend: 'webgpu' | 'cpu';
  ms: number;
}

export declare function defaultModelUrls(): Promise<{ modelUrl: string; tokenizerUrl: string }>;
export declare function createReranker(options?: CreateRerankerOptions): Promise<Reranker>;

export declare class Reranker {
  private constructor();
  readonly backend: BackendInfo;
  readonly modelInfo: unknown;
  record(event: SessionEvent): boolean;
  history(): SessionEvent[];
  forget(): void;
  rerank<T extends Candidate>(candidates: T[], options?: RerankOptions): Promise<RerankResult<T>>;
  rerankStrict(candidates: Candidate[], options?: CoreRerankOptions): Promise<RankedItem[]>;
}
