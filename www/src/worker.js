// The Web Worker the ranker runs in, so the page's thread never waits on
// the model. Messages: { id, op, args } in, { id, ok, value | error } out
// (host.js), and one { hello: true } first, once this module and its
// imports have loaded: an error before it means the script could not load
// (404, wrong MIME type, blocked), and the page runs the ranker on its own
// thread.
//
// Built, this module is also the engine's bundle for the service worker
// (service-worker.js imports the engine from it): a first visit's page
// worker has just fetched it, so the service worker's install only
// revalidates it instead of downloading the engine a second time. It
// serves only where it runs as a dedicated worker.
import { Engine } from './engine.js';
import { answer, operations } from './host.js';

export { Engine, answer, operations };

if (typeof DedicatedWorkerGlobalScope !== 'undefined' && self instanceof DedicatedWorkerGlobalScope) {
  const engine = new Engine();
  const ops = operations(engine);

  // The only message that is not plain data is the page's compiled wasm
  // (provideWasm): if it cannot be read here, the engine fetches the wasm.
  self.onmessageerror = () => engine.provideWasm(null);

  self.onmessage = async ({ data }) => {
    const { reply, trap } = await answer(ops, data ?? {});
    self.postMessage(reply);
    // A trap may leave the wasm instance unusable: crash this worker on
    // purpose, so the page starts a fresh one.
    if (trap) {
      setTimeout(() => {
        throw trap;
      });
    }
  };

  self.postMessage({ hello: true });
}
