import { parentPort, workerData } from 'node:worker_threads';
import { Automaton, syntheticCaptions } from '@mode/curator';

/**
 * Worker of the curator suite: regenerates its blocks of the synthetic corpus (the same texts as
 * the main thread's), then matches them when told to go and reports texts, bytes and matches.
 */
interface Init {
  automaton: SharedArrayBuffer;
  vocab: string[];
  blocks: number[];
  blockSize: number;
  seed: number;
}
const init = workerData as Init;
const automaton = Automaton.fromBuffer(init.automaton);
const texts: string[] = [];
for (const b of init.blocks) {
  const gen = syntheticCaptions(init.vocab, init.seed + b);
  for (let i = 0; i < init.blockSize; i++) texts.push(gen());
}
let bytes = 0;
for (const t of texts) bytes += Buffer.byteLength(t);
const out = new Int32Array(automaton.entries);
for (let i = 0; i < Math.min(texts.length, 20_000); i++) automaton.match(texts[i]!, out); // warm-up, as in the main thread
parentPort!.postMessage({ type: 'ready' });
parentPort!.on('message', () => {
  let matches = 0;
  for (const t of texts) matches += automaton.match(t, out);
  parentPort!.postMessage({ type: 'done', texts: texts.length, bytes, matches });
});
