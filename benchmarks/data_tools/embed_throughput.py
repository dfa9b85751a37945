"""Throughput of the plugin's streaming `embed` on CPU against a bare transformers loop over the
same item texts, and `embed` at 10^6 items with a tiny random encoder (time, peak memory, a kill
and a resume).

    python benchmarks/data_tools/embed_throughput.py --items 3000 --rounds 3 \
        --office_items PATH/TO/Office.item.json \
        --scale_items 100000 1000000 --out benchmarks/results/embed-throughput.md

(about 25 minutes on 2 shared CPU cores, most of it the two 10^6-item runs)

Texts: the real item texts of RecBole's ml-100k (movie title, release year, genres) and, with
``--office_items``, of the Amazon Office items of an LC-Rec ``Office.item.json`` (title, brand,
categories; their long descriptions are left out so that a run fits a few minutes on 2 cores),
in one `.item` file, repeated (the copy number appended to the title) to reach N items; the
`.inter` file holds one interaction per item.

Throughput (all-MiniLM-L6-v2, --batch_size texts per encoder call, CPU); the rounds alternate
  bare: AutoTokenizer + AutoModel loaded beforehand, batches in file order (no sorting), mean
        pooling + L2 normalisation, vectors kept in a list; timed: the loop only;
  ours: `embed_dataset` end to end, from the .inter/.item files to the finished .itememb; timed:
        everything, encoder loading, checks and writing included. Its encoding step alone (time
        inside `encode_texts`) and its writing step are timed within the same run.
Reported: median items/s of each, and the median over rounds of ours/bare, each ratio taken from
two neighbouring runs so that the varying load of a shared machine largely cancels.

Writer: `write_itememb_chunks` on random unit vectors of 384 numbers (rows/s, MB/s), and the
previous writer (one f-string format per number) on the first rows for comparison.

Scale: for each --scale_items N, `python -m recbole_alphafuse embed` in a subprocess with a tiny
randomly initialised BERT (2 layers, hidden 32, the MiniLM tokenizer) saved to a temp folder,
--scale_threads torch threads: wall time, items/s and the subprocess's peak RSS (VmHWM, read
every 0.2 s). At the largest N a second run is killed (SIGKILL) once a quarter of its chunks are
saved, then rerun: the rerun must skip the saved chunks and write all N rows.

Results page: benchmarks/results/embed-throughput.md.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import torch

import recbole_alphafuse.data.embed as embed_module
from benchmarks.report import write_report
from recbole_alphafuse.benchmark.report import machine
from recbole_alphafuse.data.atomic import read_atomic
from recbole_alphafuse.data.embed import DEFAULT_CHUNK_SIZE, ItemTexts, default_encoder_path
from recbole_alphafuse.data.itememb import HEADER, write_itememb_chunks
from recbole_alphafuse.data.prepare import bundled_dataset_dir

ML_FIELDS = ("movie_title", "release_year", "class")
OFFICE_FIELDS = ("title", "brand", "categories")
TITLE_FIELDS = ("movie_title", "title")
NAME = "texts"


def source_items(office_items=None):
    """The real item texts: one ``{field: value}`` per ml-100k movie, then per Office product."""
    movies, _ = read_atomic(bundled_dataset_dir("ml-100k") / "ml-100k.item")
    items = [dict(zip(ML_FIELDS, row)) for row in movies[list(ML_FIELDS)].itertuples(index=False)]
    office = json.loads(Path(office_items).read_text(encoding="utf-8")) if office_items else {}
    for fields in office.values():
        # One line per item in an atomic file: no tabs or line breaks inside a value.
        items.append({field: " ".join(fields.get(field, "").split()) for field in OFFICE_FIELDS})
    return items


def write_dataset(folder, n_items, office_items=None):
    """``NAME.item`` with ``n_items`` items (the sources repeated) and ``NAME.inter`` with one
    interaction per item."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = source_items(office_items)
    columns = [*ML_FIELDS, *OFFICE_FIELDS]
    with open(folder / f"{NAME}.item", "w", encoding="utf-8") as f:
        types = [
            "token" if column in ("release_year", "brand") else "token_seq" for column in columns
        ]
        f.write("\t".join(["item_id:token", *(f"{c}:{t}" for c, t in zip(columns, types))]) + "\n")
        for item in range(n_items):
            values = dict(sources[item % len(sources)])
            copy = item // len(sources)
            for field in TITLE_FIELDS:
                if copy and values.get(field):
                    values[field] += f" ({copy})"
            f.write("\t".join([str(item), *(values.get(c, "") for c in columns)]) + "\n")
    with open(folder / f"{NAME}.inter", "w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\n")
        f.writelines(f"u{item % 1000}\t{item}\n" for item in range(n_items))


@torch.no_grad()
def bare_loop(texts, tokenizer, model, batch_size):
    """The plain way: batches in the given order, mean pooling, L2 normalisation."""
    vectors = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size], padding=True, truncation=True, return_tensors="pt"
        )
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (model(**batch).last_hidden_state * mask).sum(1) / mask.sum(1)
        vectors.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return vectors


def ours(folder, args):
    """Seconds of one end-to-end ``embed_dataset`` run, and of its encoding and writing steps."""
    spent = {"encode": 0.0, "write": 0.0}

    def timed(function, step):
        def run(*arguments, **options):
            start = time.perf_counter()
            try:
                return function(*arguments, **options)
            finally:
                spent[step] += time.perf_counter() - start

        return run

    output = folder / f"{NAME}.itememb"
    output.unlink(missing_ok=True)
    with (
        mock.patch.object(embed_module, "encode_texts", timed(embed_module.encode_texts, "encode")),
        mock.patch.object(
            embed_module, "write_itememb_chunks", timed(write_itememb_chunks, "write")
        ),
    ):
        start = time.perf_counter()
        embed_module.embed_dataset(
            folder,
            NAME,
            batch_size=args.batch_size,
            device="cpu",
            show_progress=False,
            chunk_size=args.chunk_size,
        )
        spent["total"] = time.perf_counter() - start
    return spent


def throughput(args, root):
    from transformers import AutoModel, AutoTokenizer

    folder = root / "throughput"
    write_dataset(folder, args.items, args.office_items)
    texts = [text for _, chunk in ItemTexts(folder, NAME).chunks(args.items) for text in chunk]
    tokenizer = AutoTokenizer.from_pretrained(default_encoder_path())
    model = AutoModel.from_pretrained(default_encoder_path()).eval()
    bare_loop(texts[: 2 * args.batch_size], tokenizer, model, args.batch_size)  # warm-up
    runs = []
    for round_number in range(args.rounds):
        start = time.perf_counter()
        bare_loop(texts, tokenizer, model, args.batch_size)
        bare = time.perf_counter() - start
        spent = ours(folder, args)
        runs.append({"bare": bare, **spent})
        print(f"round {round_number}: {runs[-1]}", flush=True)
    if count_rows(folder / f"{NAME}.itememb") != args.items:
        sys.exit(f"error: the .itememb of the throughput run does not hold {args.items} rows")
    rate = {
        key: statistics.median(args.items / run[key] for run in runs)
        for key in ("bare", "total", "encode")
    }
    ratio = statistics.median(run["bare"] / run["total"] for run in runs)
    encode_ratio = statistics.median(run["bare"] / run["encode"] for run in runs)
    tokens = [len(ids) for ids in tokenizer(texts, truncation=True)["input_ids"]]
    text_bytes = np.mean([len(text.encode()) for text in texts])
    lines = [
        (
            f"### Throughput: {args.items} real item texts, all-MiniLM-L6-v2, batch size "
            f"{args.batch_size}, chunk size {args.chunk_size}, {args.rounds} alternating rounds"
        ),
        "",
        (
            f"Texts: {len(texts)}, {text_bytes:.0f} bytes and {np.mean(tokens):.0f} tokens on "
            f"average ({np.percentile(tokens, 90):.0f} tokens at the 90th percentile)."
        ),
        "",
        "| run | items/s (median) | ours / bare (median of rounds) |",
        "|---|---|---|",
        f"| bare transformers loop (file order, loop only) | {rate['bare']:.1f} | - |",
        (
            f"| ours: `embed` end to end (.item/.inter -> .itememb) | {rate['total']:.1f} | "
            f"{ratio:.2f} |"
        ),
        (
            f"| ours: encoding step alone (`encode_texts`) | {rate['encode']:.1f} | "
            f"{encode_ratio:.2f} |"
        ),
        "",
        "| round | bare s | ours end to end s | ours encoding s | ours writing s |",
        "|---|---|---|---|---|",
        *(
            f"| {number} | {run['bare']:.1f} | {run['total']:.1f} | {run['encode']:.1f} | "
            f"{run['write']:.2f} |"
            for number, run in enumerate(runs)
        ),
    ]
    return lines, ratio, text_bytes


def previous_writer(path, tokens, vectors):
    """The writer this plugin had before: one f-string format per number."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(HEADER + "\n")
        f.writelines(
            f"{token}\t{' '.join(f'{v:.7g}' for v in vector)}\n"
            for token, vector in zip(tokens, vectors)
        )


def writer_speed(root, rows, rounds, dim=384):
    """Rows/s of the chunked writer and of the previous one, alternating; both files must match."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((rows, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    tokens = [str(item) for item in range(rows)]
    chunks = [
        (tokens[start : start + DEFAULT_CHUNK_SIZE], vectors[start : start + DEFAULT_CHUNK_SIZE])
        for start in range(0, rows, DEFAULT_CHUNK_SIZE)
    ]
    writers = {
        "chunked": (root / "chunked.itememb", lambda path: write_itememb_chunks(path, chunks)),
        "previous": (
            root / "previous.itememb",
            lambda path: previous_writer(path, tokens, vectors),
        ),
    }
    seconds = {name: [] for name in writers}
    for _ in range(rounds):
        for name, (path, write) in writers.items():
            start = time.perf_counter()
            write(path)
            seconds[name].append(time.perf_counter() - start)
    paths = [path for path, _ in writers.values()]
    if paths[0].read_bytes() != paths[1].read_bytes():
        sys.exit("error: the chunked writer's file differs from the previous writer's")
    rate = {name: rows / statistics.median(times) for name, times in seconds.items()}
    megabytes = paths[0].stat().st_size / 1e6
    return [
        f"### Writer: {rows} rows x {dim} numbers (`%.7g`), median of {rounds} alternating runs",
        "",
        "| writer | rows/s | MB/s |",
        "|---|---|---|",
        *(
            f"| {label} | {rate[name]:.0f} | {rate[name] * megabytes / rows:.1f} |"
            for name, label in (
                ("chunked", "`write_itememb_chunks` (one %-format per row)"),
                ("previous", "previous `write_itememb` (one f-string per number)"),
            )
        ),
        "",
        (
            f"Both files are byte for byte the same. At {rate['chunked']:.0f} rows/s, 10^6 rows "
            f"of {dim} numbers ({megabytes / rows * 1e3:.1f} GB) take "
            f"{1e6 / rate['chunked'] / 60:.1f} minutes to write."
        ),
    ]


def tiny_encoder(folder):
    """A randomly initialised 2-layer BERT of width 32 with the MiniLM tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(default_encoder_path())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def peak_rss_mib(pid):
    """High-water resident size of process ``pid`` since its exec (its own memory only: the
    ru_maxrss of a child also counts the parent's pages it held between fork and exec)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0  # exited: its memory is gone


def run_embed(data_path, encoder, log, args, kill_at_parts=None):
    """Run the embed command; kill it (SIGKILL) once ``kill_at_parts`` chunks are saved.

    Returns (exit code, seconds, peak RSS in MiB)."""
    command = [
        sys.executable,
        "-m",
        "recbole_alphafuse",
        "embed",
        "--dataset",
        NAME,
        "--data-path",
        str(data_path),
        "--lm",
        str(encoder),
        "--device",
        "cpu",
        "--chunk-size",
        str(args.chunk_size),
        "--batch-size",
        str(args.batch_size),
    ]
    threads = str(args.scale_threads)
    environment = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    parts = data_path / NAME / f".{NAME}.itememb.parts"
    start = time.perf_counter()
    peak = 0.0
    with open(log, "w", encoding="utf-8") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environment)
        # The child is only reaped below, so its /proc entry stays readable until then.
        while not os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG):
            peak = max(peak, peak_rss_mib(process.pid))
            if kill_at_parts is not None and len(list(parts.glob("part-*.npz"))) >= kill_at_parts:
                os.kill(process.pid, signal.SIGKILL)
                kill_at_parts = None
            time.sleep(0.2)
        peak = max(peak, peak_rss_mib(process.pid))
        code = process.wait()
    return code, time.perf_counter() - start, peak


def count_rows(path):
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 24), b"")) - 1


def scale(args, root, text_bytes):
    encoder = tiny_encoder(root / "tiny-encoder")
    lines = [
        (
            f"### Scale: `python -m recbole_alphafuse embed` with a tiny random BERT (2 layers, "
            f"hidden 32), chunk size {args.chunk_size}, batch size {args.batch_size}, "
            f"OMP_NUM_THREADS={args.scale_threads}"
        ),
        "",
        "| items | run | seconds | items/s | peak RSS (MiB) | rows written |",
        "|---|---|---|---|---|---|",
    ]
    notes = []
    for n_items in args.scale_items:
        data_path = root / f"scale-{n_items}"
        folder = data_path / NAME
        write_dataset(folder, n_items, args.office_items)
        output = folder / f"{NAME}.itememb"
        code, seconds, peak = run_embed(data_path, encoder, root / f"clean-{n_items}.log", args)
        if code != 0:
            sys.exit(f"error: embed failed on {n_items} items; see {root}/clean-{n_items}.log")
        rows = count_rows(output)
        lines.append(
            f"| {n_items} | uninterrupted | {seconds:.0f} | {n_items / seconds:.0f} | "
            f"{peak:.0f} | {rows} |"
        )
        print(lines[-1], flush=True)
        if n_items != max(args.scale_items):
            continue
        output.unlink()
        n_chunks = -(-n_items // args.chunk_size)
        kill_at = n_chunks // 4
        code, killed_seconds, killed_peak = run_embed(
            data_path, encoder, root / "killed.log", args, kill_at_parts=kill_at
        )
        parts = folder / f".{NAME}.itememb.parts"
        saved = len(list(parts.glob("part-*.npz")))
        left_file = "a partial .itememb (FAILURE)" if output.exists() else "no .itememb"
        lines.append(
            f"| {n_items} | killed (SIGKILL) with {saved} of {n_chunks} chunks saved | "
            f"{killed_seconds:.0f} | - | {killed_peak:.0f} | {left_file} |"
        )
        code, resumed_seconds, resumed_peak = run_embed(
            data_path, encoder, root / "resumed.log", args
        )
        log = (root / "resumed.log").read_text(encoding="utf-8")
        resumed_line = next((line for line in log.splitlines() if "resuming" in line), "")
        rows = count_rows(output) if code == 0 else 0
        lines.append(
            f"| {n_items} | rerun after the kill | {resumed_seconds:.0f} | "
            f"{(n_items - saved * args.chunk_size) / resumed_seconds:.0f} (new items) | "
            f"{resumed_peak:.0f} | {rows} |"
        )
        notes.append(
            f"After the kill: {left_file}, {saved} chunk files kept. The rerun logged "
            f"`{resumed_line.strip()}`, exited with {code}, wrote {rows} rows (expected "
            f"{n_items}) and left the parts folder {'in place' if parts.exists() else 'removed'}."
        )
    notes.append(
        f"For comparison: all texts of 10^6 items take about {text_bytes:.0f} MB as UTF-8 (more "
        "as Python strings), all MiniLM vectors of 10^6 items 10^6 x 384 x 4 B = 1.5 GB."
    )
    return [*lines, "", *notes]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=3000, help="texts of the throughput runs")
    parser.add_argument(
        "--office_items", default=None, help="an LC-Rec Office.item.json whose texts join ml-100k's"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/ours rounds")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--chunk_size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--writer_rows", type=int, default=20000)
    parser.add_argument(
        "--scale_items", type=int, nargs="*", default=[100000, 1000000], help="sizes, or none"
    )
    parser.add_argument(
        "--scale_threads",
        type=int,
        default=1,
        help="torch threads of the scale runs (OMP_NUM_THREADS): a tiny encoder's operations are "
        "too small to gain from more, and on a shared CPU more were 10x slower",
    )
    parser.add_argument("--out", required=True, help="markdown report")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lines, ratio, text_bytes = throughput(args, root)
        lines += ["", *writer_speed(root, args.writer_rows, args.rounds)]
        if args.scale_items:
            lines += ["", *scale(args, root, text_bytes)]
    header = [
        (
            f"`embed` throughput on {machine()}; load average {load_before:.1f} at the start and "
            f"{os.getloadavg()[0]:.1f} at the end (the 2 cores were shared with other work). "
            f"Ours / bare = {ratio:.2f}."
        ),
        "",
    ]
    write_report(args.out, header + lines)


if __name__ == "__main__":
    main()
