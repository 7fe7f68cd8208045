// The web console: GET / serves its page and GET /ui/{file} its scripts and style sheets — the
// plain ES modules and CSS of src/web/ and uPlot's ESM build and CSS from node_modules, named in
// one table (nothing else on disk can be asked for). Every answer carries a Content-Security-Policy
// that allows scripts, styles and requests to this origin only (no inline script, no framing).
import { readFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';
import { AppError } from '../../errors/index.ts';

export const CONSOLE_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:", "connect-src 'self'",
  "font-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join('; ');

export const CONSOLE_HEADERS: Record<string, string> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));
const types: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.html': 'text/html; charset=utf-8' };

function consoleFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(WEB_DIR)) if (/^[a-z0-9-]+\.(js|css)$/.test(name)) files.set(name, path.join(WEB_DIR, name));
  const uplot = path.dirname(createRequire(import.meta.url).resolve('uplot'));
  files.set('uplot.esm.js', path.join(uplot, 'uPlot.esm.js'));
  files.set('uplot.min.css', path.join(uplot, 'uPlot.min.css'));
  return files;
}

export function consoleRoutes(): Hono {
  const app = new Hono();
  const files = consoleFiles();
  const cache = new Map<string, Buffer>();
  const serve = async (file: string): Promise<Response> => {
    let body = cache.get(file);
    if (!body) {
      body = await readFile(file);
      cache.set(file, body);
    }
    return new Response(new Uint8Array(body), {
      status: 200,
      headers: { ...CONSOLE_HEADERS, 'content-type': types[path.extname(file)], 'cache-control': 'no-cache' },
    });
  };
  app.get('/', () => serve(path.join(WEB_DIR, 'index.html')));
  app.get('/ui/:file', (c) => {
    const file = files.get(c.req.param('file'));
    if (!file) throw new AppError(404, 'not_found', 'no such console file');
    return serve(file);
  });
  return app;
}
