// The operations a host of the engine answers, the same in the Web Worker
// (worker.js) and in the service worker (service-worker.js): { id, op, args }
// in, { id, ok, value | error } out.

/** The engine's operations a page may call, bound to `engine`. */
export function operations(engine) {
  return {
    load: (options) => engine.load(options),
    provideModel: (bytes) => engine.provideModel(bytes),
    provideWasm: (module) => engine.provideWasm(module),
    setStorage: (enabled) => engine.setStorage(enabled),
    record: (event) => engine.record(event),
    history: () => engine.history(),
    exportHistory: () => engine.exportHistory(),
    forget: (storageName) => engine.forget(storageName),
    rerank: (candidates, options, deadline, listKey) => engine.rerank(candidates, options, deadline, listKey),
    backend: () => engine.backend(),
    calibration: () => engine.calibration(),
    stats: () => engine.stats(),
  };
}

function named(name, message) {
  return Object.assign(new Error(message), { name });
}

/** Runs `op` from `ops`; resolves with the reply to send (never rejects). */
export async function answer(ops, { id, op, args = [] }) {
  try {
    if (!Object.hasOwn(ops, op)) throw named('InvalidOptionError', `unknown operation '${op}'`);
    const value = await ops[op](...args);
    return { reply: { id, ok: true, value }, trap: null };
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    // A trap (out of memory, a bug) may leave the wasm instance unusable.
    const trap = typeof WebAssembly !== 'undefined' && error instanceof WebAssembly.RuntimeError ? error : null;
    return { reply: { id, ok: false, error: { name: e.name, message: e.message } }, trap };
  }
}
