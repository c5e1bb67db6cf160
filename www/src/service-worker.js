// The ranker's host across page views (`createReranker({ serviceWorker: true })`).
//
// On a multi-page shop every page view would start the ranker again: the
// wasm, the model (with its tokenizer) and the stored history, a few hundred ms
// each time. A service worker outlives page views, so the engine loaded for
// one page serves the next at once. This one controls no page and handles
// no fetch (its scope is the package's own folder): it only answers the
// pages' messages, the same operations as the Web Worker (host.js), for
// any same-origin page that sends them. Messages:
//   page → here: { shelfrank: HOST_VERSION, id, key, op, args }, with a port
//   here → that port: { id, ok, value | error }
// Engines are kept per load request (model, tokenizer, backend, storage
// name…); `key` names one. The browser may stop this worker when it is idle
// (about 30 s without a message): a page then gets NotLoadedError and loads
// again, from the HTTP cache and the stored history.
// The engine from the page worker's bundle (see worker.js), which a first
// visit has just fetched: one download of the engine, not two.
import { Engine, answer, operations } from './worker.js';
import { HOST_VERSION } from './protocol.js';

/** key → Promise<{ engine, ops, loaded }> */
const engines = new Map();

// A newer host takes over at once: it controls no page, so nothing waits on it.
self.addEventListener('install', () => self.skipWaiting());

self.addEventListener('message', (event) => {
  const data = event.data;
  if (data?.shelfrank === undefined || event.ports.length !== 1) return;
  event.waitUntil(handle(event, data));
});

function failure(id, error) {
  return { id, ok: false, error };
}

/** A load: the engine for this request, started now or already loaded for an earlier page. */
async function load(request) {
  const { storage = true, ...rest } = request ?? {};
  // A page without consent (or under a privacy signal) never joins the
  // engine of pages that store a history: it gets one of its own, which
  // knows only what it is told, as a page's own worker would.
  const key = JSON.stringify(rest) + (storage ? '' : ' (no storage)');
  let entry = engines.get(key);
  const shared = entry !== undefined;
  if (!entry) {
    entry = (async () => {
      const engine = new Engine();
      const loaded = await engine.load(request);
      return { engine, ops: operations(engine), loaded };
    })();
    engines.set(key, entry);
    entry.catch(() => engines.delete(key));
  }
  const { engine, loaded } = await entry;
  if (!shared) return { ...loaded, key, shared: false };
  // An engine an earlier page loaded: this page's consent, and the
  // history as stored now (this page's own worker may have added to it).
  const started = performance.now();
  const { storage: where, warnings } = await engine.setStorage(storage);
  const restoredEvents = await engine.resync();
  const stages = { resync: Math.round(performance.now() - started) };
  return { ...loaded, backend: engine.backend(), key, shared: true, restoredEvents, storage: where, warnings, fallback: null, stages };
}

/** What a page may ask before it has loaded: its engine, and a ping that keeps this worker from idling. */
const hostOps = { load, ping: () => true };

async function handle(event, { id, key, op, args = [], shelfrank }) {
  const port = event.ports[0];
  const send = (reply) => {
    port.postMessage(reply);
    port.close();
  };
  if (shelfrank !== HOST_VERSION) {
    send(failure(id, { name: 'VersionError', message: `this service worker speaks version ${HOST_VERSION} of the host messages, the page ${shelfrank}` }));
    return;
  }
  let ops = hostOps;
  if (!Object.hasOwn(hostOps, op)) {
    const entry = engines.get(key);
    const ready = entry && (await entry.catch(() => null));
    if (!ready) return send(failure(id, { name: 'NotLoadedError', message: 'the service worker holds no ranker for this page (it was stopped in between); load again' }));
    ops = ready.ops;
  }
  const { reply, trap } = await answer(ops, { id, op, args });
  send(reply);
  // A trap may leave the wasm instance, which every engine here shares,
  // unusable: retire this worker. Pages then run the ranker in their own
  // Web Worker and register a fresh host for the next page view.
  if (trap) {
    engines.clear();
    self.registration.unregister().catch(() => {});
  }
}
