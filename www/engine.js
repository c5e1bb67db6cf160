// The ranker's engine: the wasm model plus the shopper's stored history. It
// runs inside the Web Worker (worker.js) by default, or on the page's thread
// when the page asks for no worker. It never talks to the network except to
// fetch the model and tokenizer files it is given.
import init, { Ranker } from './pkg/shelfrank.js';

const STORE = 'history';
const KEY = 'events';

function namedError(name, message) {
  const error = new Error(message);
  error.name = name;
  return error;
}

async function fetchBytes(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw namedError('FetchError', `cannot fetch the ${what} from ${url}: ${error.message}`);
  }
  if (!response.ok) throw namedError('FetchError', `cannot fetch the ${what} from ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? namedError('StorageError', 'IndexedDB request failed'));
  });
}

/**
 * The history in IndexedDB: one record holding the bounded event list, so
 * what is stored is always exactly what the ranker remembers. Opened lazily:
 * a shopper who never gets recorded never gets a database.
 */
class HistoryStore {
  #name;
  #db = null;
  #writing = null;
  #pending = null;

  constructor(name) {
    this.#name = name;
  }

  static available() {
    return typeof indexedDB !== 'undefined' && indexedDB !== null;
  }

  async #open() {
    if (this.#db) return this.#db;
    const req = indexedDB.open(this.#name, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    const db = await request(req);
    // Another tab deleting the database (forget) must not be blocked by us.
    db.onversionchange = () => {
      db.close();
      if (this.#db === db) this.#db = null;
    };
    this.#db = db;
    return db;
  }

  async #exists() {
    if (typeof indexedDB.databases !== 'function') return true;
    const dbs = await indexedDB.databases();
    return dbs.some((d) => d.name === this.#name);
  }

  /** The stored events, or [] when nothing is stored. Throws on a corrupted record. */
  async load() {
    if (!(await this.#exists())) return [];
    const db = await this.#open();
    const value = await request(db.transaction(STORE, 'readonly').objectStore(STORE).get(KEY));
    if (value === undefined) return [];
    if (!value || value.version !== 1 || !Array.isArray(value.events)) {
      throw namedError('StorageError', 'the stored history is not in a format this version understands; it was reset');
    }
    return value.events;
  }

  /** Stores `events`; writes are coalesced so only the latest list is written. */
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
    while (this.#pending) {
      const events = this.#pending;
      this.#pending = null;
      const db = await this.#open();
      const tx = db.transaction(STORE, 'readwrite');
      tx.objectStore(STORE).put({ version: 1, events }, KEY);
      await new Promise((resolve, reject) => {
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error ?? namedError('StorageError', 'the write was aborted'));
      });
    }
  }

  /** Deletes the whole database. */
  async clear() {
    this.#pending = null;
    await this.#writing?.catch(() => {});
    this.#db?.close();
    this.#db = null;
    await new Promise((resolve, reject) => {
      const req = indexedDB.deleteDatabase(this.#name);
      req.onsuccess = resolve;
      req.onerror = () => reject(req.error);
      req.onblocked = resolve; // finishes once other connections close
    });
  }
}

export class Engine {
  #ranker = null;
  #store = null;
  #storeName = 'shelfrank';
  #persist = true;
  #storageEnabled = false;

  /**
   * Loads the model. `storage`: whether the history may be read from and
   * written to IndexedDB now (false until consent, or under a privacy
   * signal). Resolves with what the page needs to know.
   */
  async load({ modelUrl, tokenizerUrl, wasmUrl, backend = 'auto', history, persist = true, storage = true, storageName = 'shelfrank' }) {
    const [, modelBytes, tokenizerBytes] = await Promise.all([
      init(wasmUrl ? { module_or_path: wasmUrl } : undefined),
      fetchBytes(modelUrl, 'model'),
      fetchBytes(tokenizerUrl, 'tokenizer'),
    ]);
    const options = { backend };
    if (history !== undefined) options.history = history;
    this.#ranker = await Ranker.load(modelBytes, tokenizerBytes, options);
    this.#persist = persist;
    this.#storeName = storageName;
    const restored = await this.setStorage(storage);
    return { backend: this.#ranker.backend, modelInfo: this.#ranker.modelInfo, ...restored };
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

  /**
   * Turns storage on (reading back what was stored) or off (the in-memory
   * history stays until forget). Returns { restoredEvents, storage, warnings }.
   */
  async setStorage(enabled) {
    this.#storageEnabled = enabled;
    const warnings = [];
    let restoredEvents = 0;
    if (!enabled) return { restoredEvents, storage: this.storage, warnings };
    if (this.#persist && HistoryStore.available() && !this.#store) {
      const store = new HistoryStore(this.#storeName);
      let stored = [];
      try {
        stored = await store.load();
        this.#store = store;
      } catch (error) {
        warnings.push({ name: error.name || 'StorageError', message: error.message });
        // A corrupted record is dropped and storage carries on; an
        // unavailable IndexedDB (private mode, blocked) leaves memory only.
        if (error.name === 'StorageError') {
          await store.clear().catch(() => {});
          this.#store = store;
        }
      }
      for (const event of stored) {
        try {
          this.#loaded.record(event);
        } catch {
          // A stored event this version cannot read is skipped, not fatal.
        }
      }
      // Expired or unreadable events are gone from memory: store that too.
      restoredEvents = this.#loaded.historyLength;
      if (stored.length !== restoredEvents) this.#save();
    }
    return { restoredEvents, storage: this.storage, warnings };
  }

  #save() {
    if (!this.#store || !this.#storageEnabled) return;
    this.#store.save(this.#loaded.history()).catch(() => {
      // Quota exceeded or storage gone: keep going in memory.
      this.#store = null;
    });
  }

  record(event) {
    this.#loaded.record(event);
    this.#save();
  }

  history() {
    return this.#loaded.history();
  }

  exportHistory() {
    return {
      format: 'shelfrank-history',
      version: 1,
      exportedAt: new Date().toISOString(),
      storage: this.storage,
      events: this.#ranker ? this.#ranker.history() : [],
    };
  }

  async forget() {
    this.#ranker?.forget();
    if (this.#store) {
      const store = this.#store;
      this.#store = null;
      await store.clear();
    } else if (this.#persist && HistoryStore.available()) {
      // Also erase what an earlier page stored, even if this one never opened it.
      await new HistoryStore(this.#storeName).clear();
    }
  }

  /**
   * Reranks unless `deadline` (ms since the epoch) has already passed: a
   * request the page has given up on is dropped, not computed.
   */
  async rerank(candidates, options, deadline) {
    if (deadline && Date.now() > deadline) return { skipped: true };
    const ranker = this.#loaded;
    const ranking = await ranker.rerank(candidates, options);
    return { ranking, historyEvents: ranker.historyLength };
  }
}
