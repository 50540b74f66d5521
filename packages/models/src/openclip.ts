/**
 * OpenCLIP's models in and out. A hub folder (`open_clip_config.json` with `model_cfg` and
 * `preprocess_cfg`, beside `open_clip_model.safetensors`) loads as it is: the parameter names are
 * already OpenCLIP's, F16 / BF16 / F32 tensors are read as f32, `attn_mask` (a buffer OpenAI's
 * checkpoints carry) is skipped, and every `model_cfg` key is either used or refused by name.
 * Exporting writes the same folder, which OpenCLIP's `create_model_and_transforms` reads.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModuleFrom, readSafetensorsFile, saveModule, type SafetensorsFile } from '@mode/autograd';
import { CLIP } from './clip.js';
import { checkConfig, OPENAI_PREPROCESS, type ClipConfig, type Preprocess } from './config.js';

export const OPENCLIP_CONFIG = 'open_clip_config.json';
export const OPENCLIP_WEIGHTS = 'open_clip_model.safetensors';

/**
 * `Tokenizer.id` of OpenAI's vocabulary (`bpe_simple_vocab_16e6.txt.gz`), which every OpenCLIP
 * model with the 49,408-token vocabulary was trained with (a test checks it against the file).
 */
export const OPENAI_TOKENIZER = { id: 'f1cdebcac788ff96', source: "OpenAI's bpe_simple_vocab_16e6.txt.gz" } as const;

type Json = Record<string, unknown>;

/** Reads a config object key by key; whatever is left unread at the end is refused by name. */
class Keys {
  private readonly seen = new Set<string>();

  constructor(
    private readonly o: Json,
    private readonly path: string,
    private readonly where: string,
  ) {}

  private fail(key: string, why: string): never {
    throw Object.assign(new Error(`${this.where}: ${this.path}.${key} ${why}. Fix: use a model OpenCLIP builds as CLIP with a ViT image tower`), {
      userFacing: true,
    });
  }

  /** A number (or, for image_size, [n, n]). */
  num(key: string, fallback?: number): number {
    this.seen.add(key);
    let v = this.o[key] ?? fallback;
    if (Array.isArray(v) && v.length === 2 && v[0] === v[1]) v = v[0];
    if (typeof v !== 'number') this.fail(key, v === undefined ? 'is missing' : `= ${JSON.stringify(v)} is not supported (a number is)`);
    return v;
  }

  /** A value the networks support only at `supported` (their behaviour); anything else is refused, naming what it asks for. */
  only(key: string, supported: unknown[], what: string): unknown {
    this.seen.add(key);
    const v = this.o[key];
    if (v !== undefined && !supported.some((s) => JSON.stringify(s) === JSON.stringify(v))) this.fail(key, `= ${JSON.stringify(v)} (${what}) is not supported`);
    return v;
  }

  /** Keys that do not change the network (precision, initialisation, outputs): read and set aside. */
  ignore(...keys: string[]): void {
    for (const k of keys) this.seen.add(k);
  }

  obj(key: string): Keys {
    this.seen.add(key);
    const v = this.o[key];
    if (!v || typeof v !== 'object' || Array.isArray(v)) this.fail(key, 'is missing or not an object');
    return new Keys(v as Json, `${this.path}.${key}`, this.where);
  }

  done(): void {
    const rest = Object.keys(this.o).filter((k) => !this.seen.has(k));
    if (rest.length) this.fail(rest[0]!, `is not supported${rest.length > 1 ? ` (nor ${rest.slice(1).join(', ')})` : ''}`);
  }
}

/** OpenCLIP's `model_cfg` (a `model_configs/*.json`, or a hub config's `model_cfg`) as this project's config. */
export function configFromOpenClip(modelCfg: unknown, where: string): ClipConfig {
  if (!modelCfg || typeof modelCfg !== 'object') throw Object.assign(new Error(`${where}: no model_cfg object`), { userFacing: true });
  const top = new Keys(modelCfg as Json, 'model_cfg', where);
  const v = top.obj('vision_cfg');
  const t = top.obj('text_cfg');
  const quick = top.only('quick_gelu', [true, false], 'the activation') === true;
  top.only('custom_text', [false], 'a CustomTextCLIP, whose text tower is named text.*');
  top.only('init_logit_bias', [null], "SigLIP's sigmoid loss bias");
  top.ignore('cast_dtype', 'init_logit_scale', 'output_dict');
  const embedDim = top.num('embed_dim');

  const layers = v.num('layers');
  const width = v.num('width');
  const headWidth = v.num('head_width', 64);
  if (width % headWidth)
    throw Object.assign(new Error(`${where}: model_cfg.vision_cfg.width ${width} is not a multiple of head_width ${headWidth}`), { userFacing: true });
  const vision = {
    imageSize: v.num('image_size'),
    patchSize: v.num('patch_size'),
    width,
    layers,
    heads: width / headWidth,
    mlpRatio: v.num('mlp_ratio', 4),
    pool: 'cls' as const,
  };
  v.only('timm_model_name', [null], 'a timm image tower');
  v.only('timm_model_pretrained', [false, null], 'timm weights');
  v.only('timm_pool', ['avg', '', null], 'timm pooling');
  v.only('timm_proj', ['linear', null], 'timm projection');
  v.only('timm_proj_bias', [false], 'timm projection bias');
  v.only('timm_drop', [0], 'timm dropout');
  v.only('timm_drop_path', [null], 'timm drop path');
  v.only('ls_init_value', [null], 'layer scale');
  v.only('patch_dropout', [0], 'patch dropout');
  v.only('attentional_pool', [false], 'an attention pooler');
  v.only('global_average_pool', [false], 'average pooling');
  v.only('pool_type', ['tok'], 'pooling other than the class token');
  v.only('no_ln_pre', [false], 'no ln_pre');
  v.only('final_ln_after_pool', [false], 'ln_post after pooling');
  v.only('pos_embed_type', ['learnable'], 'fixed position embeddings');
  v.only('input_patchnorm', [false], 'patch normalisation');
  v.only('act_kwargs', [null], 'activation arguments');
  v.only('norm_kwargs', [null], 'normalisation arguments');
  v.ignore('attn_pooler_queries', 'attn_pooler_heads', 'output_tokens');
  v.done();

  const vocabSize = t.num('vocab_size', 49408);
  const text = {
    contextLength: t.num('context_length', 77),
    vocabSize,
    width: t.num('width'),
    heads: t.num('heads'),
    layers: t.num('layers'),
    mlpRatio: t.num('mlp_ratio', 4),
    // OpenCLIP pools at the argmax of the ids: the end-of-text id when it is the largest (OpenAI's vocabulary).
    eotId: vocabSize - 1,
  };
  t.only('pool_type', ['argmax'], 'pooling other than at the end-of-text token');
  t.only('hf_model_name', [null], 'a Hugging Face text tower');
  t.only('hf_tokenizer_name', [null], 'a Hugging Face tokenizer');
  t.only('embed_cls', [false], 'a class token in the text');
  t.only('no_causal_mask', [false], 'a text tower without its causal mask');
  t.only('proj_bias', [false], 'a text projection bias');
  t.only('proj_type', ['linear', null], 'a text projection other than linear');
  t.only('ls_init_value', [null], 'layer scale');
  t.only('final_ln_after_pool', [false], 'ln_final after pooling');
  t.only('act_kwargs', [null], 'activation arguments');
  t.only('norm_kwargs', [null], 'normalisation arguments');
  t.only('tokenizer_kwargs', [null], 'tokenizer arguments');
  t.ignore('pad_id', 'output_tokens', 'hf_model_pretrained', 'hf_proj_type', 'hf_pooler_type');
  t.done();
  top.done();

  const config: ClipConfig = { embedDim, vision, text, gelu: quick ? 'quick' : 'none' };
  checkConfig(config);
  return config;
}

/** This project's config as OpenCLIP's `model_cfg`; refused where OpenCLIP has no equivalent. */
export function openClipConfigOf(c: ClipConfig, where: string): Json {
  const no = (why: string) => {
    throw Object.assign(new Error(`${where}: ${why}, which OpenCLIP's CLIP cannot express`), { userFacing: true });
  };
  if (c.vision.pool !== 'cls') no('its image tower averages patch tokens without a class token (vision.pool "mean")');
  if (c.gelu === 'tanh') no('it uses the tanh approximation of GELU');
  if (c.vision.width % c.vision.heads) no('its vision width is not a multiple of its heads');
  if ((c.text.eotId ?? 2) !== c.text.vocabSize - 1)
    no(`its text tower pools at end-of-text id ${c.text.eotId ?? 2}, not the largest id (OpenCLIP pools at the argmax; train with OpenAI's tokenizer)`);
  return {
    embed_dim: c.embedDim,
    ...(c.gelu === 'quick' ? { quick_gelu: true } : {}),
    vision_cfg: {
      image_size: c.vision.imageSize,
      layers: c.vision.layers,
      width: c.vision.width,
      head_width: c.vision.width / c.vision.heads,
      mlp_ratio: c.vision.mlpRatio,
      patch_size: c.vision.patchSize,
    },
    text_cfg: {
      context_length: c.text.contextLength,
      vocab_size: c.text.vocabSize,
      width: c.text.width,
      heads: c.text.heads,
      layers: c.text.layers,
      mlp_ratio: c.text.mlpRatio,
    },
  };
}

function preprocessFrom(cfg: unknown, size: number, where: string): Preprocess {
  const p = (cfg ?? {}) as Json;
  const triple = (k: string, d: [number, number, number]): [number, number, number] => {
    const v = p[k] ?? d;
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number'))
      throw Object.assign(new Error(`${where}: preprocess_cfg.${k} = ${JSON.stringify(v)} is not three numbers`), { userFacing: true });
    return v as [number, number, number];
  };
  const d = OPENAI_PREPROCESS(size);
  const interpolation = p.interpolation ?? 'bicubic';
  const resizeMode = p.resize_mode ?? 'shortest';
  if (interpolation !== 'bicubic' && interpolation !== 'bilinear')
    throw Object.assign(new Error(`${where}: preprocess_cfg.interpolation "${String(interpolation)}" is not supported (bicubic, bilinear)`), {
      userFacing: true,
    });
  if (resizeMode !== 'shortest')
    throw Object.assign(new Error(`${where}: preprocess_cfg.resize_mode "${String(resizeMode)}" is not supported (shortest)`), { userFacing: true });
  return { size, mean: triple('mean', d.mean), std: triple('std', d.std), interpolation, resizeMode };
}

/** A directory OpenCLIP's hub format describes. */
export const isOpenClipFolder = (path: string): boolean => existsSync(path) && statSync(path).isDirectory() && existsSync(join(path, OPENCLIP_CONFIG));

/**
 * An OpenCLIP model: a hub folder, or a bare safetensors file with `config` naming one of
 * OpenCLIP's `model_configs/*.json` (or a hub config). The tokenizer it needs is recorded as
 * OpenAI's when the vocabulary is OpenAI's 49,408 tokens.
 */
export function loadOpenClip(src: string, o: { config?: string } = {}): CLIP {
  const folder = isOpenClipFolder(src);
  const configPath = o.config ?? (folder ? join(src, OPENCLIP_CONFIG) : undefined);
  if (!configPath)
    throw Object.assign(new Error(`${src}: an OpenCLIP safetensors file needs its model config. Fix: pass --config model_configs/NAME.json`), {
      userFacing: true,
    });
  const weights = folder ? join(src, OPENCLIP_WEIGHTS) : src;
  let json: Json;
  try {
    json = JSON.parse(readFileSync(configPath, 'utf8')) as Json;
  } catch (e) {
    throw Object.assign(new Error(`${configPath}: not an OpenCLIP config (${(e as Error).message})`), { userFacing: true });
  }
  const modelCfg = 'model_cfg' in json ? json.model_cfg : json;
  const config = configFromOpenClip(modelCfg, configPath);
  const file = readSafetensorsFile(weights);
  const model = new CLIP(config, { seed: 0 });
  // OpenAI's checkpoints carry the text tower's causal mask as a buffer: not a parameter here.
  const tensors = Object.fromEntries(Object.entries(file.tensors).filter(([name]) => !name.endsWith('attn_mask')));
  loadModuleFrom(model, { ...file, tensors } as SafetensorsFile, weights);
  model.preprocess = preprocessFrom('preprocess_cfg' in json ? json.preprocess_cfg : undefined, config.vision.imageSize, configPath);
  if (config.text.vocabSize === 49408) model.tokenizer = { ...OPENAI_TOKENIZER };
  return model;
}

/** Writes `model` as an OpenCLIP hub folder (config and weights, each written whole then renamed). */
export async function saveOpenClip(model: CLIP, dir: string): Promise<void> {
  const modelCfg = openClipConfigOf(model.config, dir);
  const pre = model.preprocess ?? OPENAI_PREPROCESS(model.config.vision.imageSize);
  mkdirSync(dir, { recursive: true });
  const config = {
    model_cfg: modelCfg,
    preprocess_cfg: { size: pre.size, mean: pre.mean, std: pre.std, interpolation: pre.interpolation, resize_mode: pre.resizeMode },
  };
  writeFileSync(join(dir, `${OPENCLIP_CONFIG}.tmp`), JSON.stringify(config, null, 2) + '\n');
  await saveModule(model, join(dir, `${OPENCLIP_WEIGHTS}.tmp`));
  renameSync(join(dir, `${OPENCLIP_WEIGHTS}.tmp`), join(dir, OPENCLIP_WEIGHTS));
  renameSync(join(dir, `${OPENCLIP_CONFIG}.tmp`), join(dir, OPENCLIP_CONFIG));
}
