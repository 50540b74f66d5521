"""The faiss and scikit-learn peers of `mode bench kmeans` (full Lloyd iterations), run by
bench/src/kmeans.ts as a /usr/bin/python3 child, one child per thread count (the caller sets
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS in its environment; the script also sets faiss's OpenMP
threads and, where threadpoolctl is installed, the BLAS and OpenMP pools to the same number).

usage: kmeans_fit.py --info
       kmeans_fit.py SPEC.json

SPEC: {"points": P.npy (N×D float32), "init": C.npy (K×D float32), "threads": t,
       "jobs": [{"lib": "faiss" | "sklearn-fit" | "sklearn-iter", "n": n, "k": k, "repeats": r}]}
Each job runs on the first n points and the first k initial centres: one warm-up call on a small
prefix of the points (libraries loaded, thread pools started), then `repeats` timed calls on all n,
perf_counter around each call. One JSON line per job on stdout, as each finishes.

What one call is:
- faiss: faiss.Kmeans(d, k, niter=1, max_points_per_centroid=n (no subsampling), nredo=1,
  seed=1).train(x, init_centroids=c): the index set-up, one assignment (IndexFlatL2 search) and one
  update (compute_centroids + split_clusters of empty ones). `inertia` is faiss's objective of that
  iteration: Σ of squared distances to the initial centres.
- sklearn-fit: KMeans(n_clusters=k, init=c, n_init=1, max_iter=1, algorithm='lloyd', tol=0).fit(x):
  input validation, centring (a copy of x), one Lloyd iteration, then the E-step sklearn reruns
  after its loop so the labels match the centres (so two assignments and one update), and inertia.
- sklearn-iter: one call of sklearn's own Lloyd iteration, sklearn.cluster._k_means_lloyd.
  lloyd_iter_chunked_dense (assignment + update, a private function, exactly what KMeans.fit runs
  per iteration), under threadpool_limits(1, "blas") as KMeans.fit runs it; x's squared norms
  are not needed by this version.
"""

import json
import os
import statistics
import sys
import time

import numpy as np

INSTALL = "apt-get install -y python3-sklearn python3-faiss"


def versions():
    out = {"numpy": np.__version__}
    for name in ("sklearn", "faiss", "threadpoolctl"):
        try:
            out[name] = {"version": __import__(name).__version__}
        except Exception as e:  # noqa: BLE001 (any import failure means: not available)
            out[name] = {"error": f"{type(e).__name__}: {e}"}
    return out


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def limit_threads(threads):
    """Sets every pool we can reach to `threads`; returns what was set, for the report."""
    done = [f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"]
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
        done.append(f"faiss.omp_set_num_threads({threads})")
    except Exception:  # noqa: BLE001
        pass
    try:
        from threadpoolctl import threadpool_limits

        limit_threads.keep = threadpool_limits(limits=threads)  # kept alive for the whole run
        done.append(f"threadpool_limits({threads})")
    except Exception:  # noqa: BLE001
        pass
    return done


def faiss_call(x, c):
    import faiss

    n, d = x.shape
    k = c.shape[0]
    km = faiss.Kmeans(d, k, niter=1, nredo=1, seed=1, verbose=False, max_points_per_centroid=max(n, 1), min_points_per_centroid=1)

    def run():
        km.train(x, init_centroids=c)
        return float(km.obj[0]) if len(km.obj) else None

    return run


def sklearn_fit_call(x, c):
    from sklearn.cluster import KMeans

    k = c.shape[0]

    def run():
        KMeans(n_clusters=k, init=c, n_init=1, max_iter=1, algorithm="lloyd", tol=0).fit(x)
        return None

    return run


def sklearn_iter_call(x, c):
    from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    from threadpoolctl import threadpool_limits

    n = x.shape[0]
    k = c.shape[0]
    weights = np.ones(n, dtype=x.dtype)
    threads = _openmp_effective_n_threads()

    def run():
        centres, centres_new = c.copy(), np.zeros_like(c)
        weight_in_clusters = np.zeros(k, dtype=x.dtype)
        labels = np.full(n, -1, dtype=np.int32)
        shift = np.zeros(k, dtype=x.dtype)
        with threadpool_limits(limits=1, user_api="blas"):
            lloyd_iter_chunked_dense(x, weights, centres, centres_new, weight_in_clusters, labels, shift, threads)
        return None

    return run


CALLS = {"faiss": faiss_call, "sklearn-fit": sklearn_fit_call, "sklearn-iter": sklearn_iter_call}


def main():
    if sys.argv[1:] == ["--info"]:
        reply(versions())
        return
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    threads = int(spec["threads"])
    points = np.load(spec["points"])
    init = np.load(spec["init"])
    pools = limit_threads(threads)
    for job in spec["jobs"]:
        lib, n, k, repeats = job["lib"], int(job["n"]), int(job["k"]), int(job["repeats"])
        out = {"lib": lib, "n": n, "k": k, "threads": threads, "pools": pools}
        try:
            x = np.ascontiguousarray(points[:n], dtype=np.float32)
            c = np.ascontiguousarray(init[:k], dtype=np.float32)
            warm = np.ascontiguousarray(points[: min(n, max(4 * k, 4096))])
            CALLS[lib](warm, c)()  # imports, thread pools, first-touch of the library's code
            run = CALLS[lib](x, c)
            seconds, inertia = [], None
            for _ in range(repeats):
                t = time.perf_counter()
                inertia = run()
                seconds.append(time.perf_counter() - t)
            out.update(seconds=seconds, median=statistics.median(seconds), inertia=inertia)
        except ImportError as e:
            out["unavailable"] = f"{lib}: {type(e).__name__}: {e}; install with `{INSTALL}`"
        except Exception as e:  # noqa: BLE001 (reported in the row instead of failing the suite)
            out["error"] = f"{type(e).__name__}: {e}"
        reply(out)


if __name__ == "__main__":
    main()
