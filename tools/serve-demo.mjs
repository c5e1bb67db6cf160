// Serves the demo shop on 127.0.0.1: the repository root as static files
// (the shop imports /www/shelfrank.js, which fetches /www/pkg-cpu/ and /models/)
// plus the shop's JSON API under /api/. Run it to print the shop's URL.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDemoBackend } from './demo-backend.mjs';
import { serve } from './static-server.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Starts the demo server (port 0 picks a free one). Resolves to { url, close };
 * the shop is at `${url}/www/demo/`. `options` go to createDemoBackend.
 */
export async function startDemo({ root = repoRoot, port = 0, catalogPath, ...options } = {}) {
  const backend = await createDemoBackend(catalogPath ?? path.join(root, 'www/demo/catalog.json'), options);
  return serve(root, port, backend);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { url } = await startDemo({ port: Number(process.env.PORT ?? 8080) });
  console.log(`shelfrank demo: ${url}/www/demo/`);
}
