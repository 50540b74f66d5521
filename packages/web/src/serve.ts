/** `mode serve`: the site over HTTP on 127.0.0.1 (files read when asked for, so a re-trained expert is served fresh). */
import { createReadStream, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname } from 'node:path';
import type { Site } from './site.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.safetensors': 'application/octet-stream',
};

export function serveSite(site: Site, o: { port?: number; host?: string } = {}): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    const f = site.files.get(path);
    const fail = (status: number, text: string) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, `${req.method} is not served: this is a static site`);
    if (!f) return fail(404, `${path}: not part of this site`);
    const headers = { 'content-type': ('type' in f && f.type) || TYPES[extname(path)] || 'application/octet-stream', 'cache-control': 'no-store' };
    if ('bytes' in f) {
      res.writeHead(200, { ...headers, 'content-length': f.bytes.byteLength });
      return res.end(req.method === 'HEAD' ? undefined : f.bytes);
    }
    if (!existsSync(f.path)) return fail(404, `${path}: ${f.path} is gone from the run folder (re-run mode run to make it again)`);
    res.writeHead(200, headers);
    if (req.method === 'HEAD') return res.end();
    createReadStream(f.path).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 8080, o.host ?? '127.0.0.1', () => {
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : o.port;
      resolve({ server, url: `http://${o.host ?? '127.0.0.1'}:${port}/` });
    });
  });
}
