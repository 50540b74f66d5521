"""An OpenCLIP hub folder written from Python, with its float64 reference: the other side of
@mode/models' importer, written from OpenCLIP's definitions (model_configs/*.json, CLIP's
state_dict as `save_for_hf` writes it), not from the project's exporter.

    openclip_hub.py MODEL_CFG.json OUT_DIR SEED

Writes OUT_DIR/open_clip_config.json ({"model_cfg", "preprocess_cfg"}), OUT_DIR/open_clip_model.safetensors
(every tensor F16 as a half-precision checkpoint is, OpenCLIP's shapes: `logit_scale` a scalar,
`in_proj_weight` [3W, W], `visual.proj` and `text_projection` [W, embed]; plus OpenAI's `attn_mask`
buffer, which old checkpoints carry), OUT_DIR/inputs.safetensors (images, tokens: start 49406,
ids, end 49407, zero padding) and OUT_DIR/ref.safetensors: the normalised features and the loss in
float64 from the F16-rounded weights (torch_clip.clip_loss).
"""
import json
import os
import sys

import numpy as np
import torch

from torch_clip import clip_loss, write


def state_dict(cfg, rng):
    """OpenCLIP's CLIP.state_dict() names and shapes for `cfg` (a model_configs/*.json), random values."""
    v, t, E = cfg["vision_cfg"], cfg["text_cfg"], cfg["embed_dim"]
    W, P, S = v["width"], v["patch_size"], v["image_size"]
    Wt, L, V = t["width"], t["context_length"], t["vocab_size"]
    mlp = lambda c: round(c["width"] * c.get("mlp_ratio", 4.0))
    sd = {}

    def tower(prefix, c, width):
        for i in range(c["layers"]):
            b = f"{prefix}resblocks.{i}."
            for ln in ("ln_1", "ln_2"):
                sd[b + ln + ".weight"] = 1 + 0.1 * rng.standard_normal(width)
                sd[b + ln + ".bias"] = 0.1 * rng.standard_normal(width)
            sd[b + "attn.in_proj_weight"] = rng.standard_normal((3 * width, width)) * width**-0.5
            sd[b + "attn.in_proj_bias"] = 0.1 * rng.standard_normal(3 * width)
            sd[b + "attn.out_proj.weight"] = rng.standard_normal((width, width)) * width**-0.5
            sd[b + "attn.out_proj.bias"] = 0.1 * rng.standard_normal(width)
            sd[b + "mlp.c_fc.weight"] = rng.standard_normal((mlp(c), width)) * width**-0.5
            sd[b + "mlp.c_fc.bias"] = 0.1 * rng.standard_normal(mlp(c))
            sd[b + "mlp.c_proj.weight"] = rng.standard_normal((width, mlp(c))) * mlp(c) ** -0.5
            sd[b + "mlp.c_proj.bias"] = 0.1 * rng.standard_normal(width)

    sd["visual.class_embedding"] = W**-0.5 * rng.standard_normal(W)
    sd["visual.positional_embedding"] = W**-0.5 * rng.standard_normal(((S // P) ** 2 + 1, W))
    sd["visual.conv1.weight"] = rng.standard_normal((W, 3, P, P)) * (3 * P * P) ** -0.5
    for ln in ("ln_pre", "ln_post"):
        sd[f"visual.{ln}.weight"] = 1 + 0.1 * rng.standard_normal(W)
        sd[f"visual.{ln}.bias"] = 0.1 * rng.standard_normal(W)
    tower("visual.transformer.", v, W)
    sd["visual.proj"] = W**-0.5 * rng.standard_normal((W, E))
    sd["token_embedding.weight"] = 0.02 * rng.standard_normal((V, Wt))
    sd["positional_embedding"] = 0.01 * rng.standard_normal((L, Wt))
    tower("transformer.", t, Wt)
    sd["ln_final.weight"] = 1 + 0.1 * rng.standard_normal(Wt)
    sd["ln_final.bias"] = 0.1 * rng.standard_normal(Wt)
    sd["text_projection"] = Wt**-0.5 * rng.standard_normal((Wt, E))
    sd["logit_scale"] = np.array(np.log(1 / 0.07))  # a scalar, as OpenCLIP's nn.Parameter(torch.ones([]) * …)
    return {k: np.asarray(a, dtype="<f2") for k, a in sd.items()}


def main():
    cfg = json.load(open(sys.argv[1]))
    out, seed = sys.argv[2], int(sys.argv[3])
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    sd = state_dict(cfg, rng)
    L = t["context_length"]
    mask = np.triu(np.full((L, L), -np.inf, dtype="<f4"), 1)
    write(os.path.join(out, "open_clip_model.safetensors"), {**sd, "attn_mask": mask}, {"format": "pt"})
    preprocess = {"size": v["image_size"], "mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711],
                  "interpolation": "bicubic", "resize_mode": "shortest"}
    json.dump({"model_cfg": cfg, "preprocess_cfg": preprocess}, open(os.path.join(out, "open_clip_config.json"), "w"), indent=2)

    # Inputs: captions of different lengths (one filling the context), pooled at the argmax of the ids.
    B, S = 3, v["image_size"]
    images = rng.uniform(-2, 2, (B, 3, S, S))
    tokens = np.zeros((B, L))
    for i, n in enumerate([3, L - 2, L // 2][:B]):
        tokens[i, : n + 2] = [49406, *rng.integers(256, 49000, n), 49407]
    write(os.path.join(out, "inputs.safetensors"), {"images": torch.tensor(images), "tokens": torch.tensor(tokens)})

    # The reference, in torch_clip's config terms, read from model_cfg here (not from the project).
    ref_cfg = {
        "gelu": "quick" if cfg.get("quick_gelu") else "none",
        "vision": {"patchSize": v["patch_size"], "pool": "cls", "width": v["width"], "heads": v["width"] // v.get("head_width", 64), "layers": v["layers"]},
        "text": {"width": t["width"], "heads": t["heads"], "layers": t["layers"], "eotId": 49407},
    }
    p = {k: torch.tensor(a.astype(np.float64)) for k, a in sd.items()}
    with torch.no_grad():
        image, text, loss = clip_loss(p, ref_cfg, torch.tensor(images), torch.tensor(tokens).long())
    write(os.path.join(out, "ref.safetensors"), {"out.image": image, "out.text": text, "out.loss": loss.reshape(1)})


if __name__ == "__main__":
    main()
