"""OpenCLIP's image data pipeline as a throughput peer for `mode bench loader`.

It reads the same WebDataset tar shards as our loader (img2dataset layout: KEY.jpg/jpeg/png/webp in
any case, KEY.txt caption, optional KEY.json) at the same worker counts, so the two numbers compare
like for like. Modes:

  pipeline  what OpenCLIP's training loader does per sample: whole shards per DataLoader worker
            (webdataset's split_by_worker), members grouped by key, the first of jpg/jpeg/png/webp
            decoded with PIL and converted to RGB ("pilrgb"), the caption read as UTF-8, then its
            train transform (RandomResizedCrop bicubic, ToTensor, Normalize with the OpenAI mean and
            std) and torch's default collate into batches. The shards cycle endlessly; the clock
            starts once the first batch is in (worker start-up excluded) and stops when at least
            --images more have arrived.
  decode    the decode-only limit: the same image members read into memory first (not timed), then
            Image.open(BytesIO(b)).convert('RGB') with the pixels forced, one process and one thread,
            looping until --images decodes are done.

Prints one JSON line: {"mode", "workers", "size", "images", "seconds", "images_per_s", "torch",
"torchvision", "pil"}. Errors (missing shard, shard with no image + caption sample) go to stderr
with exit code 2.
"""

import argparse
import io
import itertools
import json
import os
import sys
import tarfile
import time

try:
    import PIL
    import torch
    import torchvision
    from PIL import Image
    from torch.utils.data import DataLoader, IterableDataset, get_worker_info
    from torchvision import transforms as T
except ImportError as e:
    print(f"openclip_loader: {e} (needs python3-torch, python3-torchvision, python3-pil)", file=sys.stderr)
    sys.exit(2)

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def fail(msg):
    print(f"openclip_loader: {msg}", file=sys.stderr)
    sys.exit(2)


def samples(path):
    """(image bytes, caption) per key of one shard, streamed like webdataset's tar expander + group_by_keys."""
    def complete(group):
        ext = next((e for e in IMAGE_EXTS if e in group), None)
        return (group[ext], group["txt"].decode("utf-8")) if ext and "txt" in group else None

    key, group = None, {}
    with tarfile.open(path, mode="r|*") as tar:
        for m in tar:
            if not m.isfile():
                continue
            d, base = os.path.split(m.name)
            if "." not in base:
                continue
            stem, ext = base.split(".", 1)
            if os.path.join(d, stem) != key:
                if key is not None and (s := complete(group)):
                    yield s
                key, group = os.path.join(d, stem), {}
            group[ext.lower()] = tar.extractfile(m).read()
    if key is not None and (s := complete(group)):
        yield s


class Shards(IterableDataset):
    def __init__(self, shards, transform):
        self.shards, self.transform = shards, transform

    def __iter__(self):
        info = get_worker_info()
        mine = self.shards if info is None else self.shards[info.id :: info.num_workers]
        while mine:  # cycle endlessly; a worker without shards ends at once, as with split_by_worker
            for shard in mine:
                for img, caption in samples(shard):
                    yield self.transform(Image.open(io.BytesIO(img)).convert("RGB")), caption


def one_thread(_worker_id):
    torch.set_num_threads(1)


def run_pipeline(a):
    transform = T.Compose([
        T.RandomResizedCrop(a.size, scale=(a.scale_min, a.scale_max), interpolation=T.InterpolationMode.BICUBIC),
        T.ToTensor(),
        T.Normalize(OPENAI_MEAN, OPENAI_STD),
    ])
    loader = DataLoader(Shards(a.shards, transform), batch_size=a.batch, num_workers=a.workers,
                        persistent_workers=False, worker_init_fn=one_thread)
    batches = iter(loader)
    next(batches)  # start-up and the first batch are not timed
    count, t0 = 0, time.perf_counter()
    while count < a.images:
        count += next(batches)[0].shape[0]
    seconds = time.perf_counter() - t0
    del batches  # shuts the workers down
    return count, seconds


def run_decode(a):
    images = [img for shard in a.shards for img, _ in samples(shard)]
    t0 = time.perf_counter()
    for img in itertools.islice(itertools.cycle(images), a.images):
        Image.open(io.BytesIO(img)).convert("RGB").load()
    return a.images, time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--shards", nargs="+", required=True)
    p.add_argument("--mode", choices=("pipeline", "decode"), default="pipeline")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--scale-min", type=float, default=0.9)
    p.add_argument("--scale-max", type=float, default=1.0)
    a = p.parse_args()
    if a.workers < 0 or a.size < 1 or a.images < 1 or a.batch < 1:
        fail("--workers must be >= 0 and --size, --images, --batch >= 1")
    for shard in a.shards:  # check every shard up front, so a worker never dies on one
        if not os.path.isfile(shard):
            fail(f"shard not found: {shard}")
        try:
            if next(samples(shard), None) is None:
                fail(f"shard has no sample with an image ({'/'.join(IMAGE_EXTS)}) and a .txt caption: {shard}")
        except (tarfile.TarError, OSError, UnicodeDecodeError) as e:
            fail(f"cannot read shard {shard}: {e}")
    if a.workers > len(a.shards):
        print(f"openclip_loader: {a.workers} workers but {len(a.shards)} shards; workers beyond that stay idle",
              file=sys.stderr)
    torch.set_num_threads(1)
    try:
        count, seconds = (run_pipeline if a.mode == "pipeline" else run_decode)(a)
    except Exception as e:  # a corrupt member, a worker that died, ...
        fail(f"{a.mode} failed: {type(e).__name__}: {e}")
    print(json.dumps({"mode": a.mode, "workers": a.workers, "size": a.size, "images": count, "seconds": seconds,
                      "images_per_s": count / seconds, "torch": torch.__version__,
                      "torchvision": torchvision.__version__, "pil": PIL.__version__}))


if __name__ == "__main__":
    main()
