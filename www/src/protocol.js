// What the page sends to the ranker: plain, cloneable values only, and no
// more of them than the ranker reads, so a huge request cannot blow up the
// copy to the worker. The limits come from the ranker itself (`limits`,
// answered at load: { maxCandidates, maxTextBytes }); the ranker checks the
// request and words the errors. The page checks only what a copy would
// lose (numbers JSON cannot carry, fields that cannot be read).

function invalid(message) {
  const error = new Error(message);
  error.name = 'InvalidCandidateError';
  return error;
}

/** The fields of a Candidate the page sends. */
export const CANDIDATE_FIELDS = ['id', 'title', 'category', 'brand', 'price', 'serverScore', 'pinned'];

/** Lone UTF-16 surrogates become U+FFFD, as they would on entering wasm. */
const wellFormed =
  typeof String.prototype.toWellFormed === 'function'
    ? (text) => text.toWellFormed()
    : (text) => text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

/**
 * The fields a Candidate has, without undefined ones or anything else the
 * caller's object carries. Texts are cut to what the ranker reads (a UTF-16
 * code unit is at least one UTF-8 byte, so nothing it would read is lost);
 * an id is cut one unit past the limit, so the ranker still sees, and
 * refuses, an id that is too long.
 */
function plainCandidate(c, { maxTextBytes }) {
  const out = {};
  for (const key of CANDIDATE_FIELDS) {
    let value = c[key];
    if (value === undefined) continue;
    if (typeof value === 'string') {
      const keep = key === 'id' ? maxTextBytes + 1 : maxTextBytes;
      if (value.length > keep) value = value.slice(0, keep);
      value = wellFormed(value);
    }
    out[key] = value;
  }
  return out;
}

/** The fields a SessionEvent has (texts made well-formed), nothing else. */
export function plainEvent(e) {
  const out = {};
  for (const key of ['type', 'id', 'title', 'category', 'brand', 'query', 'timestamp']) {
    let value = e[key];
    if (value === undefined) continue;
    if (typeof value === 'string') value = wellFormed(value);
    out[key] = value;
  }
  return out;
}

/**
 * RankedItem objects from the ranker's packed answer ({ order, scores,
 * modelScores?, reasons? }) and the candidates it ranked.
 */
export function unpackRanking(candidates, { order, scores, modelScores, reasons }) {
  return Array.from(order, (from, slot) => {
    const c = candidates[from];
    const item = { id: c.id, originalPosition: from, score: scores[slot], pinned: c.pinned === true };
    if (modelScores) item.modelScore = modelScores[slot];
    if (reasons?.[slot]) item.reason = reasons[slot];
    return item;
  });
}

/**
 * The request's candidates as plain values, at most one more than the
 * ranker accepts (enough for it to refuse the list, never a huge copy).
 * Non-objects pass through for the ranker to refuse. Throws
 * InvalidCandidateError only for what the copy itself would lose.
 */
export function plainCandidates(candidates, limits) {
  if (!Array.isArray(candidates)) throw invalid('candidates must be an array of { id, title, ... } objects');
  return candidates.slice(0, limits.maxCandidates + 1).map((c, i) => {
    if (c === null || typeof c !== 'object' || Array.isArray(c)) return c;
    let plain;
    try {
      plain = plainCandidate(c, limits);
    } catch (error) {
      throw invalid(`candidate ${i} could not be read: ${error?.message ?? error}`);
    }
    // The list travels as JSON, where NaN and Infinity would turn into null.
    for (const key of ['serverScore', 'price']) {
      const value = plain[key];
      if (typeof value === 'number' && !Number.isFinite(value)) throw invalid(`candidate ${i} has a non-finite '${key}'`);
      if (typeof value === 'bigint') throw invalid(`candidate ${i} has a '${key}' that is not a number`);
    }
    return plain;
  });
}

/**
 * The version of the messages between a page and the service-worker host.
 * Part of the service worker's URL, so a page of a newer package registers
 * the matching host instead of talking to an older one. Raise it with any
 * change to the messages, the engine or the wasm glue.
 */
export const HOST_VERSION = 2;
