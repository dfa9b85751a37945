"""Time and peak memory of the streaming semantic-space decomposition against a plain numpy
baseline (the whole matrix in float64, np.cov + np.linalg.eigh), and how far their results differ.

    python benchmarks/data_tools/decomposition.py --sizes 20000x384 \
        --out benchmarks/results/decomposition-small.md
    python benchmarks/data_tools/decomposition.py --sizes 200000x1536 1000000x768 \
        --out benchmarks/results/decomposition-large.md

Each (size, method) runs in a fresh Python subprocess, so its peak memory is the process's own
peak resident set size (``resource.getrusage(...).ru_maxrss``, which counts native BLAS/torch
buffers that tracemalloc would miss). The table gives that peak, the resident size just after the
synthetic float32 input was generated (in small chunks, so generating adds no peak of its own; the
same for both methods; each method first ran once on 2d rows, so that library loading is not
counted), and their difference: the method's own extra memory. On CUDA the streaming method runs on the GPU (input copied there,
copy included in its time) and its peak GPU memory is given too; ``--device cpu`` forces the CPU.

The input is ``N x d`` float32 rows ``z * s @ Q + 0.1``: z standard normal, standard deviations s
log-spaced from 1 to 1e-2 (anisotropic like language embeddings, distinct eigenvalues), Q a random
rotation; generated in chunks from ``--seed`` so both subprocesses see the same matrix. Reported
differences: max over all d eigenvalues of |streaming - numpy| / |numpy|, and over the
``--hidden_size`` kept whitened coordinates of max |streaming - numpy| / max |numpy| per column
(eigenvector signs aligned first). Both must be <= 1e-6.

Memory needed by the baseline: about 3 x N x d x 8 bytes (the float64 copy, np.cov's centred copy,
the float32 input) -- about 15 GB at 1M x 768 and 6 GB at 200k x 1536; the streaming method
needs the float32 input plus O(d^2 + chunk_size x d + N x hidden_size).

Results page: benchmarks/results/decomposition-*.md (indexed in benchmarks/results/README.md).
"""

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import torch

from benchmarks.report import run_worker, write_report
from recbole_alphafuse.benchmark.report import machine
from recbole_alphafuse.model.decomposition import DEFAULT_CHUNK_SIZE, decompose_language_space

METHODS = ("streaming", "numpy")
TOLERANCE = 1e-6
GENERATION_CHUNK = 4096  # small, so that generating the input adds no peak of its own
COMPARE_CHUNK = 65536


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return peak_rss_mib()  # no /proc: the peak so far


def synthetic_embeddings(n, dim, seed):
    rng = np.random.default_rng(seed)
    rotation = np.linalg.qr(rng.standard_normal((dim, dim)))[0].astype(np.float32)
    stds = np.logspace(0, -2, dim).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, GENERATION_CHUNK):
        rows = rng.standard_normal((min(GENERATION_CHUNK, n - start), dim), dtype=np.float32)
        out[start : start + len(rows)] = (rows * stds) @ rotation + np.float32(0.1)
    return out


def numpy_decomposition(x, hidden_size):
    """The plain way: the whole matrix in float64."""
    x64 = x.astype(np.float64)
    mean = x64.mean(0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(x64.T, bias=True))
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    semantic = (x64 - mean) @ eigenvectors[:, :hidden_size] / np.sqrt(eigenvalues[:hidden_size])
    return eigenvalues, semantic


def streaming_decomposition(x, hidden_size, device, chunk_size):
    tensor = torch.from_numpy(x).to(device)
    result = decompose_language_space(tensor, hidden_size, null_dim=0, chunk_size=chunk_size)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return result.eigenvalues.cpu().numpy(), result.semantic.cpu().numpy()


def worker(args):
    """One method on one size, in this (fresh) process; results go to ``args.worker_dir``."""
    n, dim = parse_size(args.worker_size)
    x = synthetic_embeddings(n, dim, args.seed)
    device = torch.device(args.device)

    def method(rows):
        if args.worker == "numpy":
            return numpy_decomposition(rows, args.hidden_size)
        return streaming_decomposition(rows, args.hidden_size, device, args.chunk_size)

    method(x[: 2 * dim])  # warm-up: libraries loaded and initialised before measuring
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    data_rss = current_rss_mib()
    start = time.perf_counter()
    eigenvalues, semantic = method(x)
    seconds = time.perf_counter() - start
    stats = {"seconds": seconds, "data_rss_mib": data_rss, "peak_rss_mib": peak_rss_mib()}
    if args.worker == "streaming" and device.type == "cuda":
        stats["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    folder = Path(args.worker_dir)
    np.save(folder / f"{args.worker}-eigenvalues.npy", eigenvalues)
    np.save(folder / f"{args.worker}-semantic.npy", np.ascontiguousarray(semantic))
    print(json.dumps(stats))


def parse_size(text):
    n, _, dim = text.lower().partition("x")
    return int(n), int(dim)


def differences(folder):
    """Max relative differences (eigenvalues, whitened coordinates) streaming vs numpy."""
    eig = {m: np.load(folder / f"{m}-eigenvalues.npy") for m in METHODS}
    eig_diff = float(np.max(np.abs(eig["streaming"] - eig["numpy"]) / np.abs(eig["numpy"])))
    ours = np.load(folder / "streaming-semantic.npy", mmap_mode="r")
    reference = np.load(folder / "numpy-semantic.npy", mmap_mode="r")
    signs = np.zeros(reference.shape[1])
    scale = np.zeros(reference.shape[1])
    for start in range(0, len(reference), COMPARE_CHUNK):
        a, b = ours[start : start + COMPARE_CHUNK], reference[start : start + COMPARE_CHUNK]
        signs += (a * b).sum(0)
        scale = np.maximum(scale, np.abs(b).max(0))
    signs = np.sign(signs)
    worst = np.zeros(reference.shape[1])
    for start in range(0, len(reference), COMPARE_CHUNK):
        a, b = ours[start : start + COMPARE_CHUNK], reference[start : start + COMPARE_CHUNK]
        worst = np.maximum(worst, np.abs(a * signs - b).max(0))
    return eig_diff, float((worst / scale).max())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["20000x384"], help="N x d, e.g. 20000x384")
    parser.add_argument("--hidden_size", type=int, default=64, help="kept coordinates")
    parser.add_argument("--chunk_size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="markdown report (required unless --worker)")
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--worker_size", help=argparse.SUPPRESS)
    parser.add_argument("--worker_dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if not args.out:
        parser.error("--out is required")
    for size in args.sizes:
        _, dim = parse_size(size)
        if args.hidden_size > dim:
            parser.error(f"--hidden_size={args.hidden_size} exceeds d={dim} of size {size}")

    lines = [
        (
            f"Streaming decomposition (`decompose_language_space`, chunk_size {args.chunk_size}, "
            f"device {args.device}) vs numpy (float64 copy, np.cov + np.linalg.eigh) on synthetic "
            f"float32 N x d data, hidden_size {args.hidden_size}, seed {args.seed}, on {machine()}. "
            "Memory: peak RSS (ru_maxrss) of a fresh subprocess per method; 'input' is the RSS "
            "after generating the float32 data (in small chunks) and a warm-up run on 2d rows, 'extra' = peak - input. Differences: max relative "
            f"difference of all eigenvalues and of the whitened coordinates (tolerance {TOLERANCE:g})."
        ),
        "",
        "| N x d | method | seconds | peak RSS (MiB) | input (MiB) | extra (MiB) | GPU peak (MiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    checks = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            stats = {}
            for method in METHODS:
                stats[method] = run_worker(
                    __file__,
                    [
                        f"--worker={method}",
                        f"--worker_size={size}",
                        f"--worker_dir={tmp}",
                        f"--seed={args.seed}",
                        f"--hidden_size={args.hidden_size}",
                        f"--chunk_size={args.chunk_size}",
                        f"--device={args.device}",
                    ],
                    f"{method} run at {size}",
                )
                print(f"{size} {method}: {stats[method]}", flush=True)
            eig_diff, semantic_diff = differences(Path(tmp))
        for method in METHODS:
            s = stats[method]
            gpu = f"{s['gpu_peak_mib']:.0f}" if "gpu_peak_mib" in s else "-"
            lines.append(
                f"| {size} | {method} | {s['seconds']:.2f} | {s['peak_rss_mib']:.0f} | "
                f"{s['data_rss_mib']:.0f} | {s['peak_rss_mib'] - s['data_rss_mib']:.0f} | {gpu} |"
            )
        ok = eig_diff <= TOLERANCE and semantic_diff <= TOLERANCE
        checks.append(
            f"| {size} | {eig_diff:.2e} | {semantic_diff:.2e} | "
            f"{stats['numpy']['seconds'] / stats['streaming']['seconds']:.2f} | "
            f"{'yes' if ok else 'NO'} |"
        )
    lines += [
        "",
        "| N x d | eigenvalues max rel. diff | coordinates max rel. diff | speed-up | within 1e-6 |",
        "|---|---|---|---|---|",
        *checks,
    ]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
