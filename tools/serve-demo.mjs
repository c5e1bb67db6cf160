// Serves the demo storefront on 127.0.0.1 and prints its URL.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './static-server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const port = Number(process.env.PORT ?? 8080);
const { url } = await serve(root, port);
console.log(`shelfrank demo: ${url}/www/demo/`);
