/**
 * Step 1 of MoDE: one caption per pair, embedded by a text encoder and L2-normalised, written as
 * shards (one per data shard, so a killed run redoes only the shard it was in, and a job array can
 * take shards apart).
 */
import { basename } from 'node:path';
import { l2Normalize, noGrad } from '@mode/autograd';
import { mixCaptions, type CaptionRecord, type MixSource, type TextTokenizer } from '@mode/data';
import type { CLIP } from '@mode/models';
import { EmbeddingsWriter, type EmbeddingRow, type EmbeddingsManifest } from './embeddings.js';

/** Any text encoder: captions in, one vector per caption out (normalised or not: they are normalised after). */
export interface TextEncoder {
  readonly name: string;
  readonly dim: number;
  encode(captions: readonly string[]): Promise<Float32Array>;
}

/** A CLIP model's text tower (the seed model's, by default): features at the end-of-text token, projected. */
export function clipTextEncoder(model: CLIP, tokenizer: TextTokenizer, name: string): TextEncoder {
  const L = model.config.text.contextLength;
  return {
    name,
    dim: model.config.embedDim,
    async encode(captions) {
      const t = noGrad(() => l2Normalize(model.encodeText(tokenizer.tokenize(captions, L))));
      const v = await t.read();
      t.dispose();
      return v;
    },
  };
}

export interface EmbedOptions {
  sources: readonly MixSource[];
  encoder: TextEncoder;
  out: string;
  dtype?: 'f16' | 'f32';
  /** Captions per encoder call. Default 256. */
  batchSize?: number;
  /** Called after each batch with the pairs done so far. */
  onProgress?: (done: number) => void;
  /**
   * Only the data shards i, i + n, … (part i of n, one task of a job array): no manifest is
   * written; the run without `part` afterwards keeps every shard the parts wrote and writes it.
   */
  part?: { index: number; count: number };
}

/**
 * Embeds every caption of the mix; shards already written by an earlier (killed) run or by parts
 * with the same encoder are kept. Writes `embeddings.json` last (not for a part: null).
 */
export async function embedCaptions(o: EmbedOptions): Promise<EmbeddingsManifest | null> {
  const w = new EmbeddingsWriter(o.out, o.encoder.dim, o.dtype ?? 'f16', o.encoder.name);
  const B = o.batchSize ?? 256;
  let done = 0;
  let index = 0;
  let shard: string | null = null;
  let pending: CaptionRecord[] = [];
  let skipping = false;
  // Records arrive grouped by data shard (a shard thinned to nothing never appears): one embeddings shard each.
  const flush = async () => {
    if (shard === null) return;
    if (!skipping) {
      const values = new Float32Array(pending.length * o.encoder.dim);
      for (let i = 0; i < pending.length; i += B) {
        const part = pending.slice(i, i + B);
        values.set(await o.encoder.encode(part.map((r) => r.text)), i * o.encoder.dim);
        done += part.length;
        o.onProgress?.(done);
      }
      w.write(
        index,
        shard,
        values,
        pending.map((r): EmbeddingRow => ({ key: r.key, caption: r.text, group: r.group })),
      );
    }
    index++;
    pending = [];
  };
  for await (const r of mixCaptions(o.sources)) {
    if (r.shard !== shard) {
      await flush();
      shard = r.shard;
      const mine = !o.part || index % o.part.count === o.part.index;
      const kept = w.existing(index, shard);
      skipping = kept !== null || !mine;
      if (kept && mine) {
        w.keep(kept);
        done += kept.rows;
        o.onProgress?.(done);
      }
    }
    if (!skipping) pending.push(r);
  }
  await flush();
  if (o.part) return null;
  if (done === 0) throw Object.assign(new Error(`mode embed: no captions in ${o.sources.map((s) => basename(s.dir)).join(', ')}`), { userFacing: true });
  return w.finish();
}
