import { readSafetensorsFile } from '@mode/autograd';
import { clipFromSafetensors, type CLIP } from './clip.js';
import type { ClipConfig } from './config.js';
import { isOpenClipFolder, loadOpenClip } from './openclip.js';

/**
 * A model from a path: a file written by `CLIP.save` (config in its metadata, weights strict), an
 * OpenCLIP hub folder, or an OpenCLIP safetensors file with `openclipConfig` (its
 * `model_configs/NAME.json`).
 */
export function loadClip(path: string, opts: { config?: ClipConfig; openclipConfig?: string } = {}): CLIP {
  if (isOpenClipFolder(path) || opts.openclipConfig) return loadOpenClip(path, { ...(opts.openclipConfig ? { config: opts.openclipConfig } : {}) });
  return clipFromSafetensors(readSafetensorsFile(path), path, opts.config ? { config: opts.config } : {});
}
