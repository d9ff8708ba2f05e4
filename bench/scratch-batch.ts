import { readFileSync } from 'node:fs';
import path from 'node:path';
import { profileOps } from './lib/models.js';
import { modelFeeds } from '../src/engine/infer.js';
const dir = 'bench/out/tensors/paper-minik-g05-b20-random';
const model = 'bench/out/models/paper-minik-g05-b20-random';
const manifest = JSON.parse(readFileSync(path.join(model, 'manifest.json'), 'utf8'));
const file = path.join(model, process.argv[2] === 'int8' ? manifest.variants.int8.file : manifest.graph.file);
const idx = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8'));
const tensors: Float32Array[] = idx.files.map((f: string) => { const b = readFileSync(path.join(dir, f)); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); });
const knobs = { keep_ratio: manifest.knobs.keep_ratio.default, halt_threshold: manifest.knobs.halt_threshold.default, top_k: 5, merge_mode: 'none', merge_ratio: 0 } as never;
const dims = [3, 8, 224, 224];
const B = tensors.length;
const concat = new Float32Array(tensors.reduce((a, t) => a + t.length, 0)); let o = 0; for (const t of tensors) { concat.set(t, o); o += t.length; }
const out = 'bench/out/scratch-profile';
const one = await Promise.all([0].map(() => 0));
const actives: number[][] = [];
const perOp = new Map<string, number>(); let b1Wall = 0; let b1Kernel = 0;
for (let i = 0; i < B; i++) {
  const p = await profileOps(`b1-${i}`, file, modelFeeds(tensors[i]!, [1, ...dims], knobs), 2, 3, out, (a) => { actives.push(a); return {}; });
  b1Wall += p.wall_ms; b1Kernel += p.kernel_ms;
  for (const op of p.ops) perOp.set(op.op, (perOp.get(op.op) ?? 0) + op.ms);
}
const pb = await profileOps('b8', file, modelFeeds(concat, [B, ...dims], knobs), 2, 3, out);
console.log(`per video wall: b1 ${(b1Wall / B).toFixed(1)} ms, b${B} ${(pb.wall_ms / B).toFixed(1)} ms: ratio ${(pb.wall_ms / b1Wall).toFixed(2)}; kernel b1 ${(b1Kernel / B).toFixed(1)} b8 ${(pb.kernel_ms / B).toFixed(1)}`);
const L = actives[0]!.length;
let padded = 0, real = 0, padded2 = 0, real2 = 0;
for (let l = 0; l < L; l++) { const col = actives.map((a) => a[l]!); const mx = Math.max(...col); padded += B * mx; real += col.reduce((x, y) => x + y, 0); padded2 += B * mx * mx; real2 += col.reduce((x, y) => x + y * y, 0); }
console.log('tokens per layer per video:', actives.map((a) => a.join(',')).join(' | '));
console.log(`padding factor, linear (tokens): ${(padded / real).toFixed(2)}; attention (tokens^2): ${(padded2 / real2).toFixed(2)}`);
const rows = pb.ops.map((op) => ({ op: op.op, b1: (perOp.get(op.op) ?? 0) / B, b8: op.ms / B }));
for (const r of rows.slice(0, 14)) console.log(`${r.op.padEnd(24)} b1 ${r.b1.toFixed(2).padStart(7)}  b8 ${r.b8.toFixed(2).padStart(7)}  x${(r.b8 / Math.max(1e-9, r.b1)).toFixed(2)}`);
void one;
