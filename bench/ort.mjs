// The ONNX Runtime Web side of the benchmark: the exported shelfrank model
// (bench/onnx/export.py) run by onnxruntime-web in a browser page.
//
//   import { createOrtRanker } from './ort.mjs';
//   const ranker = await createOrtRanker({
//     ortModuleUrl: '/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs',
//     modelBytes,                 // Uint8Array or ArrayBuffer of the .onnx file
//     executionProvider: 'wasm',  // or 'webgpu' (with ort.webgpu.min.mjs or ort.all.min.mjs)
//   });
//   const scores = await ranker.score(inputs); // Float32Array [N]
//   await ranker.release();
//
// `inputs` are the network's inputs for one session, named as in the cases
// file written by examples/export_inputs.rs, all row-major:
//   L, N          events (oldest first) and candidates
//   T, T2         token columns of the event and candidate texts
//                 (optional: derived from the array lengths)
//   eventRows       [L]      int   ID-embedding rows (0: search / unknown item)
//   eventKinds      [L]      int   event kind index (view, click, add_to_cart, purchase, search)
//   eventTokens     [L*T]    int   token-embedding rows of each event's text
//   eventMask       [L*T]    f32   1 for a token, 0 for padding
//   candidateRows   [N]      int
//   candidateTokens [N*T2]   int
//   candidateMask   [N*T2]   f32
//   affinityWeights [L]      f32   each event's weight in the affinity profile
// Integer inputs are int64 in the model: pass BigInt64Array to avoid a
// conversion per call (any other integer array or plain array is converted).
// Float inputs: Float32Array (plain arrays are converted).
//
// Threads: onnxruntime-web runs multi-threaded only on a cross-origin
// isolated page (COOP/COEP headers, SharedArrayBuffer), and there, left to
// itself, it picks min(4, cores / 2) threads. So `numThreads` (default 1)
// is always set explicitly as `ort.env.wasm.numThreads`; on a page that is
// not isolated it is 1 whatever is asked. `npm run bench` (bench/run.mjs)
// serves its page cross-origin isolated (for the memory figures) and asks
// for 1, so ORT runs single-threaded there, like shelfrank; the page of
// bench/ort-check.mjs is not isolated. The value ORT actually used is
// returned as `numThreads`.

let configured = null;

/**
 * Loads onnxruntime-web from `ortModuleUrl` (an ESM build in its dist/
 * folder; its .wasm/.mjs companions are fetched from the same folder unless
 * `wasmPaths` says otherwise) and creates an inference session for the
 * model. Runtime settings are global in onnxruntime-web and fixed by the
 * first session of a page.
 */
export async function createOrtRanker({
  ortModuleUrl,
  modelBytes,
  executionProvider = 'wasm',
  numThreads = 1,
  wasmPaths,
  graphOptimizationLevel = 'all',
}) {
  if (!ortModuleUrl) throw new Error('createOrtRanker: ortModuleUrl is required');
  if (!modelBytes) throw new Error('createOrtRanker: modelBytes is required');
  if (executionProvider !== 'wasm' && executionProvider !== 'webgpu') {
    throw new Error(`createOrtRanker: executionProvider must be 'wasm' or 'webgpu', not ${executionProvider}`);
  }
  const moduleUrl = new URL(ortModuleUrl, globalThis.location?.href).href;
  const ort = await import(moduleUrl);
  const threads = globalThis.crossOriginIsolated ? Math.max(1, numThreads | 0) : 1;
  if (!configured) {
    ort.env.wasm.wasmPaths = wasmPaths ?? new URL('./', moduleUrl).href;
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.proxy = false;
    configured = { moduleUrl, threads };
  } else if (configured.moduleUrl !== moduleUrl) {
    throw new Error('createOrtRanker: one page can load only one onnxruntime-web build');
  }
  const bytes = modelBytes instanceof Uint8Array ? modelBytes : new Uint8Array(modelBytes);
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: [executionProvider],
    graphOptimizationLevel,
  });
  const Tensor = ort.Tensor;

  const int64 = (values) => (values instanceof BigInt64Array ? values : BigInt64Array.from(values, (v) => BigInt(v)));
  const float32 = (values) => (values instanceof Float32Array ? values : Float32Array.from(values));

  return {
    ort,
    session,
    executionProvider,
    // What ORT settled on (it writes back 1 when threads cannot run here).
    numThreads: ort.env.wasm.numThreads,
    inputNames: session.inputNames,

    /** Scores the candidates; resolves to a Float32Array of N scores. */
    async score(inputs) {
      const { L, N } = inputs;
      if (!(L >= 1 && N >= 1)) throw new Error('score: need L >= 1 events and N >= 1 candidates');
      const T = inputs.T ?? inputs.eventTokens.length / L;
      const T2 = inputs.T2 ?? inputs.candidateTokens.length / N;
      const feeds = {
        event_rows: new Tensor('int64', int64(inputs.eventRows), [L]),
        event_kinds: new Tensor('int64', int64(inputs.eventKinds), [L]),
        event_tokens: new Tensor('int64', int64(inputs.eventTokens), [L, T]),
        event_mask: new Tensor('float32', float32(inputs.eventMask), [L, T]),
        candidate_rows: new Tensor('int64', int64(inputs.candidateRows), [N]),
        candidate_tokens: new Tensor('int64', int64(inputs.candidateTokens), [N, T2]),
        candidate_mask: new Tensor('float32', float32(inputs.candidateMask), [N, T2]),
        affinity_weights: new Tensor('float32', float32(inputs.affinityWeights), [L]),
      };
      const { scores } = await session.run(feeds);
      const data = scores.location === 'cpu' ? scores.data : await scores.getData(true);
      const out = new Float32Array(data);
      scores.dispose?.();
      // The repeat prior's offsets, added on the host as shelfrank adds them.
      if (inputs.repeatOffsets) for (let i = 0; i < N; i++) out[i] += inputs.repeatOffsets[i];
      return out;
    },

    async release() {
      await session.release();
    },
  };
}
