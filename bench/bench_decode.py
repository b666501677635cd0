"""Uploads: what several visitors sending 25-megapixel PNGs at once cost the server, and how fast a foreign format
is refused.

Each visitor count runs in a fresh child process (so its peak memory is its own): N threads start together, and
each does what the Draw page does with an upload: `decode_upload` (the one check), `preprocess_steps` (the MNIST
recipe) and `plots.fit_within` (the picture shown). Every visitor sends a different file (a transparent 5000 x 5000
RGBA PNG of ~100 KB with a stroke in a different place), so the decode cache cannot help. "extra memory" is the
child's peak RSS (VmHWM, reset before the run) minus its RSS before the run.

Run from the project root:

    .venv/bin/python bench/bench_decode.py
    .venv/bin/python bench/bench_decode.py --visitors 4 8 --rounds 3
    # the same, with another preprocess.py (say, the one before issue 17: git show REV:mnist_core/preprocess.py)
    .venv/bin/python bench/bench_decode.py --preprocess /tmp/preprocess_before.py
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import benchlib
from benchlib import median, print_header, print_table, verdict

TARGET_EXTRA_MIB = 500 * 1e6 / 2**20  # 500 MB (decimal, the stricter reading)
TARGET_SECONDS = 12.0
SIDE = 5000  # 25 megapixels, the largest picture the app accepts


def load_preprocess(path: str | None):
    """mnist_core.preprocess, or the module in `path` standing in for it (to compare two versions)."""
    if path is None:
        import mnist_core.preprocess as preprocess

        return preprocess
    spec = importlib.util.spec_from_file_location("preprocess_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def big_transparent_png(offset: int) -> bytes:
    """A 25 MP RGBA PNG, transparent but for one thick white stroke: ~100 KB on the wire, 100 MB decoded."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGBA", (SIDE, SIDE), (0, 0, 0, 0))
    ImageDraw.Draw(picture).line(
        [(1200 + offset, 800), (3400 + offset, 800), (2000 + offset, 4200)], fill=(255, 255, 255, 255), width=260
    )
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def fits_file() -> bytes:
    cards = ["SIMPLE  =                    T", "BITPIX  =                    8", "NAXIS   =                    2",
             "NAXIS1  =                  512", "NAXIS2  =                  512", "END"]
    header = "".join(card.ljust(80) for card in cards).ljust(2880).encode("ascii")
    data = bytes(range(256)) * 1024
    return header + data.ljust(-(-len(data) // 2880) * 2880, b"\0")


def foreign_files() -> dict[str, bytes]:
    from PIL import Image

    picture = Image.new("L", (512, 512), 255)
    files = {}
    for file_format in ("EPS", "TIFF", "PCX", "TGA", "SGI"):
        buffer = io.BytesIO()
        picture.save(buffer, format=file_format)
        files[file_format] = buffer.getvalue()
    files["FITS"] = fits_file()
    files["FITS, gzip"] = gzip.compress(fits_file())
    return files


def memory_mib(key: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) / 1024


def reset_peak_memory() -> bool:
    """Start VmHWM afresh from the current RSS (Linux 4.0+: clear_refs 5); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child(paths: list[str], preprocess_path: str | None) -> None:
    """One round: len(paths) visitors at once; prints a JSON line with the figures."""
    preprocess = load_preprocess(preprocess_path)
    from mnist_core.constants import CANVAS_SIZE
    from mnist_core.plots import fit_within

    uploads = [Path(path).read_bytes() for path in paths]
    outcomes: list[str] = [""] * len(uploads)
    start = threading.Barrier(len(uploads) + 1)

    def visitor(index: int) -> None:
        start.wait()
        try:
            pixels = preprocess.decode_upload(uploads[index])
            steps = preprocess.preprocess_steps(pixels)
            fit_within(pixels, CANVAS_SIZE)
            outcomes[index] = f"ok, ink centred at ({steps.center_of_mass[0]:.0f}, {steps.center_of_mass[1]:.0f})"
        except ValueError as error:
            outcomes[index] = f"refused: {error}"

    threads = [threading.Thread(target=visitor, args=(index,)) for index in range(len(uploads))]
    for thread in threads:
        thread.start()
    rss_before = memory_mib("VmRSS")
    peak_reset = reset_peak_memory()
    started, cpu_started = time.perf_counter(), time.process_time()
    start.wait()
    for thread in threads:
        thread.join()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    print(json.dumps({
        "seconds": seconds, "cores": cpu_seconds / seconds, "rss_before": rss_before,
        "extra": memory_mib("VmHWM") - rss_before, "peak_reset": peak_reset, "outcomes": outcomes,
    }))


def run_round(paths: list[Path], preprocess_path: str | None) -> dict:
    command = [sys.executable, __file__, "--child", *map(str, paths)]
    if preprocess_path:
        command += ["--preprocess", preprocess_path]
    finished = subprocess.run(command, capture_output=True, text=True, check=True, cwd=benchlib.PROJECT_ROOT)
    return json.loads(finished.stdout.strip().splitlines()[-1])


def time_refusals(preprocess) -> list[list[object]]:
    rows = []
    for name, data in foreign_files().items():
        timings, outcome = [], ""
        for _ in range(20):
            preprocess_cache = getattr(preprocess, "_decoded", None)
            if preprocess_cache is not None:
                preprocess_cache.clear()  # every try decodes: no help from the cache
            started = time.perf_counter()
            try:
                preprocess.decode_upload(data)
                outcome = "decoded"
            except ValueError as error:
                outcome = f"refused: {str(error)[:70]}"
            timings.append((time.perf_counter() - started) * 1000)
        rows.append([name, f"{len(data):,}", f"{median(timings):.2f}", f"{max(timings):.2f}", outcome])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, nargs="+", default=[4, 8], help="uploads at once (default: 4 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per visitor count (default: 3)")
    parser.add_argument("--preprocess", help="a preprocess.py to measure instead of mnist_core's")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.preprocess)
        return

    print_header("Uploads: 25-megapixel PNGs at once, and foreign formats")
    print(f"  preprocess: {args.preprocess or 'mnist_core/preprocess.py'}")
    print()
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index in range(max(args.visitors)):
            path = Path(folder) / f"upload-{index}.png"
            path.write_bytes(big_transparent_png(offset=37 * index))
            paths.append(path)
        sizes = sorted({path.stat().st_size for path in paths})
        print(f"#### {max(args.visitors)} different {SIDE} x {SIDE} RGBA PNGs of {sizes[0]:,}-{sizes[-1]:,} bytes, "
              f"{args.rounds} round(s) per visitor count")
        print()
        rows = []
        for visitors in args.visitors:
            rounds = []
            for _ in range(args.rounds):
                load = benchlib.load_average()
                result = run_round(paths[:visitors], args.preprocess)
                rounds.append((result, load))
            seconds = [result["seconds"] for result, _ in rounds]
            extras = [result["extra"] for result, _ in rounds]
            outcomes = sorted({outcome.split(",")[0] for result, _ in rounds for outcome in result["outcomes"]})
            met = visitors > 4 or (max(extras) <= TARGET_EXTRA_MIB and max(seconds) <= TARGET_SECONDS)
            rows.append([
                visitors, " / ".join(f"{value:.2f}" for value in seconds), f"{median(seconds):.2f}",
                " / ".join(f"{result['cores']:.2f}" for result, _ in rounds),
                " / ".join(f"{value:,.0f}" for value in extras), f"{rounds[0][0]['rss_before']:,.0f}",
                " / ".join(f"{load:.2f}" for _, load in rounds), "; ".join(outcomes),
                verdict(met) if visitors == 4 else "",
            ])
            if not all(result["peak_reset"] for result, _ in rounds):
                print("  note: VmHWM could not be reset; 'extra' includes the import peak")
        print_table(
            ["visitors at once", "seconds per round", "median s", "cores used", "extra memory (MiB)",
             "RSS before (MiB)", "load at start", "outcome", "target (4: <= 12 s, <= 477 MiB)"],
            rows,
        )

    preprocess = load_preprocess(args.preprocess)
    print("#### Foreign formats named like a PNG: decode_upload, median and worst of 20 (ms)")
    print()
    print_table(["format", "bytes", "median ms", "worst ms", "outcome"], time_refusals(preprocess))


if __name__ == "__main__":
    main()
