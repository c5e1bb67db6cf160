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
    if (key !== 'id' && typeof value === 'string' && value.length > MAX_TEXT_BYTES) value = value.slice(0, MAX_TEXT_BYTES);
    out[key] = value;
  }
  return out;
}

/** The request's candidates as plain values; throws InvalidCandidateError for what the ranker would refuse anyway, before anything is copied. */
export function plainCandidates(candidates) {
  if (!Array.isArray(candidates)) throw invalid('candidates must be an array of { id, title, ... } objects');
  if (candidates.length > MAX_CANDIDATES) {
    throw invalid(`${candidates.length} candidates is more than the ${MAX_CANDIDATES} one rerank accepts; send the top of the list`);
  }
  return candidates.map((c, i) => {
    let plain;
    try {
      plain = plainCandidate(c);
    } catch (error) {
      throw invalid(`candidate ${i} could not be read: ${error?.message ?? error}`);
    }
    if (typeof plain?.id === 'string' && plain.id.length > MAX_TEXT_BYTES) {
      throw invalid(`candidate ${i} has an 'id' longer than ${MAX_TEXT_BYTES} bytes`);
    }
    return plain;
  });
}
