// What the page sends to the ranker: plain, cloneable values only, and no
// more of them than the ranker reads, so a huge request cannot blow up the
// copy to the worker.

/** Largest candidate list one rerank accepts (the ranker's own limit). */
export const MAX_CANDIDATES = 10_000;
/** The ranker reads at most this many bytes of an id, title, category or brand. */
export const MAX_TEXT_BYTES = 1024;

function invalid(message) {
  const error = new Error(message);
  error.name = 'InvalidCandidateError';
  return error;
}

/** Lone UTF-16 surrogates become U+FFFD, as they would on entering wasm. */
const wellFormed =
  typeof String.prototype.toWellFormed === 'function'
    ? (text) => text.toWellFormed()
    : (text) => text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

/**
 * The fields a Candidate has, without undefined ones or anything else the
 * caller's object carries. Texts are cut to what the ranker reads (a UTF-16
 * code unit is at least one UTF-8 byte, so nothing it would read is lost).
 * Non-objects pass through: the ranker rejects them with a clear error.
 */
export function plainCandidate(c) {
  if (c === null || typeof c !== 'object' || Array.isArray(c)) return c;
  const out = {};
  for (const key of ['id', 'title', 'category', 'brand', 'price', 'serverScore', 'pinned']) {
    let value = c[key];
    if (value === undefined) continue;
    if (typeof value === 'string') {
      if (key !== 'id' && value.length > MAX_TEXT_BYTES) value = value.slice(0, MAX_TEXT_BYTES);
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

/** The request's candidates as plain values; throws InvalidCandidateError for what the ranker would refuse anyway, before anything is copied. */
export function plainCandidates(candidates) {
  if (!Array.isArray(candidates)) throw invalid('candidates must be an array of { id, title, ... } objects');
  if (candidates.length > MAX_CANDIDATES) {
    throw invalid(`${candidates.length} candidates is more than the ${MAX_CANDIDATES} one rerank accepts; send the top of the list`);
  }
  return candidates.map((c, i) => {
    if (c === null || typeof c !== 'object' || Array.isArray(c)) throw invalid(`candidate ${i} is not an object like { id, title, ... }`);
    let plain;
    try {
      plain = plainCandidate(c);
    } catch (error) {
      throw invalid(`candidate ${i} could not be read: ${error?.message ?? error}`);
    }
    if (typeof plain?.id === 'string' && plain.id.length > MAX_TEXT_BYTES) {
      throw invalid(`candidate ${i} has an 'id' longer than ${MAX_TEXT_BYTES} bytes`);
    }
    // The list travels as JSON, where NaN and Infinity would turn into null.
    for (const key of ['serverScore', 'price']) {
      const value = plain?.[key];
      if (typeof value === 'number' && !Number.isFinite(value)) throw invalid(`candidate ${i} has a non-finite '${key}'`);
      if (typeof value === 'bigint') throw invalid(`candidate ${i} has a '${key}' that is not a number`);
    }
    return plain;
  });
}
