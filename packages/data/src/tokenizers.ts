/** The two vocabularies behind one type: the project's BPE and OpenAI CLIP's. */
import { OpenAiTokenizer, type OpenAiTokenizerJSON } from './openai-tokenizer.js';
import { Tokenizer, type TokenizerJSON } from './tokenizer.js';

/** Either vocabulary: the project's BPE (`mode data tokenizer`) or OpenAI CLIP's (`bpe_simple_vocab_16e6.txt.gz`). */
export type TextTokenizer = Tokenizer | OpenAiTokenizer;
export type AnyTokenizerJSON = TokenizerJSON | OpenAiTokenizerJSON;

/** A tokenizer from its `toJSON()` (sent to loader workers, fetched by the page). */
export function tokenizerFromJSON(json: AnyTokenizerJSON): TextTokenizer {
  if (json.format === 'openai-clip-bpe') return OpenAiTokenizer.fromJSON(json);
  return Tokenizer.fromJSON(json);
}
