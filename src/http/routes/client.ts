// GET /client/strata.py: the Python client (clients/python/strata.py), so that an instrument PC
// or a notebook fetches it from the server it talks to with one command. It holds no secret and
// needs no key.
import { readFileSync } from 'node:fs';
import { Hono } from 'hono';

const SOURCE = new URL('../../../clients/python/strata.py', import.meta.url);

export function clientRoutes(): Hono {
  const app = new Hono();
  let text: string | null = null;
  app.get('/client/strata.py', (c) => {
    text ??= readFileSync(SOURCE, 'utf8');
    return c.body(text, 200, { 'content-type': 'text/x-python; charset=utf-8', 'content-disposition': 'attachment; filename="strata.py"' });
  });
  return app;
}
