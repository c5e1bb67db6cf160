// What the page sends to the ranker: plain, cloneable values only.

/** The fields a Candidate has, without undefined ones or anything else the caller's object carries; non-objects pass through (the ranker rejects them with a clear error). */
export function plainCandidate(c) {
  if (c === null || typeof c !== 'object' || Array.isArray(c)) return c;
  const out = {};
  for (const key of ['id', 'title', 'category', 'brand', 'price', 'serverScore', 'pinned']) {
    if (c[key] !== undefined) out[key] = c[key];
  }
  return out;
}
