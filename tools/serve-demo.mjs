// Serves the demo shop on 127.0.0.1: the repository root as static files
// (the shop imports /www/shelfrank.js, which fetches /www/pkg-cpu/ and /models/)
// plus the shop's JSON API under /api/. Run it to print the shop's URL.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDemoBackend } from './demo-backend.mjs';
import { fail } from './setup.mjs';
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
  const asked = process.env.PORT || undefined;
  const port = Number(asked ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`PORT=${asked} is not a port number: use one from 1 to 65535 (or 0 for any free one).`);
  let demo;
  try {
    demo = await startDemo({ port });
  } catch (error) {
    if (error.code !== 'EADDRINUSE' && error.code !== 'EACCES') fail(`the demo server could not start: ${error.message}.`);
    const why = error.code === 'EADDRINUSE' ? 'is in use by another program' : 'needs privileges to listen on';
    // The default port taken: any free one will do, and the URL says which.
    if (asked !== undefined) fail(`port ${port} ${why}: stop that program or pick another port, e.g. \`PORT=8081 npm start\`.`);
    console.error(`shelfrank demo: port ${port} ${why}; serving on a free port instead (PORT=… npm start picks one).`);
    demo = await startDemo({ port: 0 });
  }
  console.log(`shelfrank demo: ${demo.url}/www/demo/  (Ctrl+C stops it)`);
}
