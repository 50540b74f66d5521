"""The PyTorch peer of `mode bench train`: one CLIP training step (forward, symmetric InfoNCE,
backward, AdamW) of the model in MODEL.safetensors (written by @mode/models' CLIP.save, so the
same shapes and weights), float32 on the CPU, at each thread count asked, timed by
perf_counter per step after warm-up steps. Prints JSON.

usage: torch_train.py MODEL.safetensors BATCH STEPS WARMUP THREADS[,THREADS...]
"""
import json
import sys
import time

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_clip import EOT_ID, clip_loss, read  # noqa: E402


def main():
    path, batch, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    threads = [int(t) for t in sys.argv[5].split(",")]
    p, meta = read(path, np.float32)
    cfg = json.loads(meta["config"])
    S, L, V = cfg["vision"]["imageSize"], cfg["text"]["contextLength"], cfg["text"]["vocabSize"]
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, S, S, generator=g)
    tokens = torch.randint(4, V, (batch, L), generator=g)
    tokens[:, 0] = 1
    tokens[:, L // 2] = EOT_ID
    tokens[:, L // 2 + 1 :] = 0
    params = list(p.values())
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
    out = {"torch": torch.__version__, "runs": []}
    for n in threads:
        torch.set_num_threads(n)
        times = []
        for i in range(warmup + steps):
            t = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            _, _, loss = clip_loss(p, cfg, images, tokens)
            loss.backward()
            opt.step()
            with torch.no_grad():
                p["logit_scale"].clamp_(0, np.log(100))
            if i >= warmup:
                times.append(time.perf_counter() - t)
        out["runs"].append({"threads": n, "seconds": times, "median": float(np.median(times))})
    print(json.dumps(out))


main()
