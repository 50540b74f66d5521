"""numpy/OpenBLAS peer, driven by bench/src/peers/numpy.ts over stdin/stdout (one JSON object per line).

`numpy_peer.py --info` prints the BLAS in use and exits. Otherwise the first line is the op spec
(op, shape, input files of raw float32); the script loads the inputs, answers {"ready": ...}, then
serves commands until stdin closes: {"cmd": "run"} (the op once), {"cmd": "time", "maxTime": s,
"minSamples": n} (median of its own perf_counter samples after one warm-up call), {"cmd":
"result", "path": p} (the op once, outputs concatenated as raw float32 into p). Everything stays
float32, as the GPU peers compute.
"""

import ctypes
import io
import json
import math
import statistics
import sys
import time
from contextlib import redirect_stdout

import numpy as np

F32 = np.float32


def blas_info():
    """The BLAS numpy runs on, with OpenBLAS's runtime core (it picks one per CPU at load)."""
    np.ones((2, 2), F32) @ np.ones((2, 2), F32)  # make sure the library is loaded
    try:
        from threadpoolctl import threadpool_info

        for lib in threadpool_info():
            if lib.get("user_api") == "blas":
                return {"library": lib.get("internal_api"), "version": lib.get("version"), "core": lib.get("architecture"),
                        "threads": lib.get("num_threads"), "via": "threadpoolctl"}
    except ImportError:
        pass
    try:  # what threadpoolctl does: ask the loaded libopenblas itself
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "libopenblas" in line})
        for path in paths:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return {"library": "openblas", "version": lib.openblas_get_config().decode(), "core": lib.openblas_get_corename().decode(),
                    "threads": lib.openblas_get_num_threads(), "via": path}
    except (OSError, AttributeError):
        pass
    text = io.StringIO()
    with redirect_stdout(text):
        np.show_config()
    return {"library": "openblas" if "openblas" in text.getvalue().lower() else "unknown", "core": None, "config": text.getvalue(), "via": "numpy.show_config()"}


def load(spec, name):
    path, shape = spec["inputs"][name]
    return np.fromfile(path, dtype=F32).reshape(shape)


def log_softmax(s, axis):
    mx = s.max(axis=axis, keepdims=True)
    return s - (mx + np.log(np.exp(s - mx).sum(axis=axis, keepdims=True)))


def make_op(spec):
    """A closure that runs the op once and returns its outputs (a list of arrays)."""
    op = spec["op"]
    if op == "matmul":
        a, b = load(spec, "a"), load(spec, "b")
        A = a.swapaxes(-1, -2) if spec["layout"] == "AtB" else a  # views: BLAS gets the transpose flag
        B = b.swapaxes(-1, -2) if spec["layout"] == "ABt" else b
        out = np.empty(A.shape[:-1] + B.shape[-1:], F32)
        return lambda: [np.matmul(A, B, out=out)]
    if op == "attention":
        q, k, v = load(spec, "q"), load(spec, "k"), load(spec, "v")
        scale = F32(1 / math.sqrt(q.shape[-1]))
        L = q.shape[-2]
        bias = np.triu(np.full((L, L), -1e9, F32), 1) if spec["causal"] else None

        def attention():
            s = np.matmul(q, k.swapaxes(-1, -2))
            s *= scale
            if bias is not None:
                s += bias
            s -= s.max(axis=-1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(axis=-1, keepdims=True)
            return [np.matmul(s, v)]

        return attention
    if op == "kmeansAssign":
        x, c = load(spec, "x"), load(spec, "c")

        def assign():
            xx = (x * x).sum(axis=1)[:, None]
            cc = (c * c).sum(axis=1)
            dist = xx - F32(2) * (x @ c.T) + cc
            return [dist.argmin(axis=1).astype(F32)]

        return assign
    if op == "infoNCE":
        img, txt = load(spec, "img"), load(spec, "txt")
        b = img.shape[0]
        scale = F32(spec["scale"])
        i = np.arange(b)
        backward = spec["backward"]

        def info_nce():
            s = (img @ txt.T) * scale
            rows, cols = log_softmax(s, 1), log_softmax(s, 0)
            loss = -(rows[i, i].sum() + cols[i, i].sum()) / F32(2 * b)
            if not backward:
                return [np.array([loss], F32)]
            # d loss / dS: (softmax_row − E)/2b, plus (softmax_col − E)/2b on the b positive columns.
            g = np.exp(rows)
            g[i, i] -= 1
            gc = np.exp(cols[:, :b])
            gc[i, i] -= 1
            g[:, :b] += gc
            g *= F32(1 / (2 * b)) * scale
            return [np.array([loss], F32), g @ txt, g.T @ img]

        return info_nce
    raise ValueError(f"unknown op {op!r}")


def timed(fn, max_time, min_samples):
    fn()  # warm-up
    samples, start = [], time.perf_counter()
    while len(samples) < min_samples or time.perf_counter() - start < max_time:
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return {"median": statistics.median(samples), "samples": len(samples)}


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    if sys.argv[1:] == ["--info"]:
        reply({"numpy": np.__version__, "blas": blas_info()})
        return
    fn = None
    for line in sys.stdin:
        try:
            msg = json.loads(line)
            if fn is None:
                fn = make_op(msg)
                reply({"ready": True})
            elif msg["cmd"] == "run":
                fn()
                reply({"ok": True})
            elif msg["cmd"] == "time":
                reply(timed(fn, msg.get("maxTime", 2), msg.get("minSamples", 5)))
            elif msg["cmd"] == "result":
                np.concatenate([np.asarray(o, F32).ravel() for o in fn()]).tofile(msg["path"])
                reply({"ok": True})
            else:
                raise ValueError(f"unknown command {msg['cmd']!r}")
        except Exception as e:  # reported to the JS side, which rejects with it
            reply({"error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main()
