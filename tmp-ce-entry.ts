import { readFileSync } from 'node:fs';
import { compileDocument } from '#domain/catalog/compile.ts';
export function run(file: string) {
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  const a = process.cpuUsage();
  const r = compileDocument(doc, { version: 1, published: true });
  const b = process.cpuUsage(a);
  const r2 = compileDocument(JSON.parse(readFileSync(file, 'utf8')), { version: 1, published: true });
  const c = process.cpuUsage(a);
  return { ok: r.ok && r2.ok, firstMs: (b.user + b.system) / 1000, secondMs: (c.user + c.system - b.user - b.system) / 1000 };
}
export function loop(file: string, n: number) {
  const text = readFileSync(file, 'utf8');
  const a = process.cpuUsage();
  for (let i = 0; i < n; i++) compileDocument(JSON.parse(text), { version: 1, published: true });
  const b = process.cpuUsage(a);
  return (b.user + b.system) / 1000 / n;
}
