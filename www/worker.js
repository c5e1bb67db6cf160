// The Web Worker the ranker runs in, so the page's thread never waits on
// the model. Messages: { id, op, args } in, { id, ok, value | error } out,
// and one { hello: true } first, once this module and its imports have
// loaded: an error before it means the script could not load (404, wrong
// MIME type, blocked), and the page runs the ranker on its own thread.
import { Engine } from './engine.js';

const engine = new Engine();

const ops = {
  load: (options) => engine.load(options),
  setStorage: (enabled) => engine.setStorage(enabled),
  record: (event) => engine.record(event),
  history: () => engine.history(),
  exportHistory: () => engine.exportHistory(),
  forget: (storageName) => engine.forget(storageName),
  rerank: (candidates, options, deadline) => engine.rerank(candidates, options, deadline),
  backend: () => engine.backend(),
  calibration: () => engine.calibration(),
  stats: () => engine.stats(),
};

self.onmessage = async ({ data }) => {
  const { id, op, args = [] } = data ?? {};
  try {
    if (!Object.hasOwn(ops, op)) throw Object.assign(new Error(`unknown operation '${op}'`), { name: 'InvalidOptionError' });
    const value = await ops[op](...args);
    self.postMessage({ id, ok: true, value });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    self.postMessage({ id, ok: false, error: { name: e.name, message: e.message } });
    // A trap (out of memory, a bug) may leave the wasm instance unusable:
    // crash this worker on purpose, so the page starts a fresh one.
    if (typeof WebAssembly !== 'undefined' && error instanceof WebAssembly.RuntimeError) {
      setTimeout(() => {
        throw error;
      });
    }
  }
};

self.postMessage({ hello: true });
