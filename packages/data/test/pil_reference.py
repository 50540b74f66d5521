"""PIL's pixels for the decoder tests: each image file decoded with PIL as OpenCLIP reads it
(Image.open(...).convert('RGB')), and with `--cover S` then resized as OpenCLIP's eval transform does
(torchvision Resize(S, bicubic) of the shorter side, then CenterCrop(S)), or with `--crop X,Y,W,H,S`
cropped and resized as RandomResizedCrop does (img.crop(box).resize((S, S), BICUBIC)). Prints one JSON object:
{file: {"width", "height", "rgb": base64 of the 8-bit RGB rows}}."""
import base64
import json
import sys

from PIL import Image


def centre_crop(img, s):
    w, h = img.size
    left, top = int(round((w - s) / 2.0)), int(round((h - s) / 2.0))
    return img.crop((left, top, left + s, top + s))


def main():
    args = sys.argv[1:]
    cover = crop = None
    if args[:1] == ["--cover"]:
        cover, args = int(args[1]), args[2:]
    if args[:1] == ["--crop"]:
        crop, args = [int(v) for v in args[1].split(",")], args[2:]
    out = {}
    for f in args:
        img = Image.open(f).convert("RGB")
        if cover:
            w, h = img.size
            # torchvision's Resize(int): the shorter side to `cover`, the other in proportion (truncated).
            size = (cover, int(cover * h / w)) if w <= h else (int(cover * w / h), cover)
            img = centre_crop(img.resize(size, Image.BICUBIC), cover)
        if crop:
            x, y, w, h, s = crop
            img = img.crop((x, y, x + w, y + h)).resize((s, s), Image.BICUBIC)
        out[f] = {"width": img.size[0], "height": img.size[1], "rgb": base64.b64encode(img.tobytes()).decode()}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
