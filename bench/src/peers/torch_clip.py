"""OpenCLIP's CLIP in PyTorch, written from its definition: the reference for @mode/models
(float64, `torch_clip.py MODEL INPUTS OUT`) and the peer of `mode bench train`
(float32, imported by torch_train.py). Parameters are a dict with OpenCLIP's names.

As a script: reads a model (safetensors written by CLIP.save, the config in its metadata) and
inputs (images [B,3,S,S], tokens [B,ctx] as F32), writes the normalised features, the CLIP loss
and the gradient of the loss for every parameter.
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

EOT_ID = 2


def read(path, dtype=np.float64):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        assert e["dtype"] == "F32", name
        arr = np.frombuffer(raw[base + a : base + b], dtype="<f4").reshape(e["shape"])
        out[name] = torch.tensor(arr.astype(dtype), requires_grad=True)
    return out, meta


def write(path, tensors, metadata=None):
    """safetensors: torch tensors as F32, numpy arrays in their own dtype (F16 or F32); sorted names, as safetensors.torch.save_file."""
    header, blobs, at = ({"__metadata__": metadata} if metadata else {}), [], 0
    for name in sorted(tensors):
        t = tensors[name]
        # np.array, not ascontiguousarray: that would make a scalar (OpenCLIP's logit_scale) 1-d.
        a = np.array(t.detach().numpy().astype("<f4") if isinstance(t, torch.Tensor) else t, order="C")
        header[name] = {"dtype": {"<f2": "F16", "<f4": "F32"}[a.dtype.str], "shape": list(a.shape), "data_offsets": [at, at + a.nbytes]}
        blobs.append(a.tobytes())
        at += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def block(p, pre, x, heads, causal, gelu):
    B, L, W = x.shape
    dh = W // heads
    h = F.layer_norm(x, (W,), p[pre + "ln_1.weight"], p[pre + "ln_1.bias"], 1e-5)
    qkv = h @ p[pre + "attn.in_proj_weight"].T + p[pre + "attn.in_proj_bias"]
    q, k, v = qkv.split(W, dim=-1)
    q, k, v = (t.reshape(B, L, heads, dh).transpose(1, 2) for t in (q, k, v))
    s = q @ k.transpose(-1, -2) / dh**0.5
    if causal:
        s = s.masked_fill(torch.triu(torch.ones(L, L, dtype=torch.bool), 1), float("-inf"))
    o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, L, W)
    x = x + o @ p[pre + "attn.out_proj.weight"].T + p[pre + "attn.out_proj.bias"]
    h = F.layer_norm(x, (W,), p[pre + "ln_2.weight"], p[pre + "ln_2.bias"], 1e-5)
    h = h @ p[pre + "mlp.c_fc.weight"].T + p[pre + "mlp.c_fc.bias"]
    # OpenCLIP's QuickGELU (OpenAI's activation) is x * sigmoid(1.702 * x); otherwise nn.GELU.
    h = h * torch.sigmoid(1.702 * h) if gelu == "quick" else F.gelu(h, approximate=gelu)
    return x + h @ p[pre + "mlp.c_proj.weight"].T + p[pre + "mlp.c_proj.bias"]


def clip_loss(p, cfg, images, tokens):
    """The normalised image and text features and the symmetric CLIP loss."""
    v, t = cfg["vision"], cfg["text"]
    B = images.shape[0]

    # Vision: stride-p convolution without bias, positions, ln_pre, blocks, ln_post, pool, proj.
    x = F.conv2d(images, p["visual.conv1.weight"], stride=v["patchSize"])
    x = x.flatten(2).transpose(1, 2)
    if v["pool"] == "cls":
        x = torch.cat([p["visual.class_embedding"].expand(B, 1, -1), x], 1)
    x = x + p["visual.positional_embedding"]
    x = F.layer_norm(x, (v["width"],), p["visual.ln_pre.weight"], p["visual.ln_pre.bias"], 1e-5)
    for i in range(v["layers"]):
        x = block(p, f"visual.transformer.resblocks.{i}.", x, v["heads"], False, cfg["gelu"])
    x = F.layer_norm(x, (v["width"],), p["visual.ln_post.weight"], p["visual.ln_post.bias"], 1e-5)
    pooled = x[:, 0] if v["pool"] == "cls" else x.mean(1)
    image = F.normalize(pooled @ p["visual.proj"], dim=-1)

    # Text: embeddings, causal blocks, ln_final, the end-of-text row, text_projection.
    x = p["token_embedding.weight"][tokens] + p["positional_embedding"]
    for i in range(t["layers"]):
        x = block(p, f"transformer.resblocks.{i}.", x, t["heads"], True, cfg["gelu"])
    x = F.layer_norm(x, (t["width"],), p["ln_final.weight"], p["ln_final.bias"], 1e-5)
    eot = (tokens == t.get("eotId", EOT_ID)).int().argmax(-1)
    text = F.normalize(x[torch.arange(B), eot] @ p["text_projection"], dim=-1)

    logits = p["logit_scale"].exp() * image @ text.T
    y = torch.arange(B)
    loss = (F.cross_entropy(logits, y) + F.cross_entropy(logits.T, y)) / 2
    return image, text, loss


def main():
    p, meta = read(sys.argv[1])
    inputs, _ = read(sys.argv[2])
    cfg = json.loads(meta["config"])
    # "forward" (4th argument): features and loss only, for shapes whose gradients would be gigabytes (b32).
    forward_only = sys.argv[4:5] == ["forward"]
    with torch.set_grad_enabled(not forward_only):
        image, text, loss = clip_loss(p, cfg, inputs["images"].detach(), inputs["tokens"].detach().long())
    out = {"out.image": image, "out.text": text, "out.loss": loss.reshape(1)}
    if not forward_only:
        loss.backward()
        out.update({"grad." + n: q.grad for n, q in p.items()})
    write(sys.argv[3], out)


if __name__ == "__main__":
    main()
