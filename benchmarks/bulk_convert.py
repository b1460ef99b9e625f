"""Bulk conversion throughput: ``heifkit convert`` of N copies of a 12 MP HEIC to JPEG, with ``--jobs 1`` and
``--jobs 2``, in files per second (and the ratio).

Usage: python benchmarks/bulk_convert.py [--count 200] [--jobs 1,2] [--repeat 1] [--source FILE] [--format jpeg]
(``make bench`` runs it). The copies are hard links (or copies) of one corpus file in a temporary folder, made
at run time; nothing is committed. Each run is the installed console script, as a user runs it, into an empty
output folder; the time includes starting the command and its worker processes. With ``--repeat N`` the
``--jobs`` values take turns N times and the best rate of each is kept (other load on the machine only ever
slows a run down). The load average is printed: on a shared machine, compare runs made at low load.

``--cpu`` also converts through ``heifkit.batch`` on a spawn-started process pool and reports the workers' CPU
seconds per file (``getrusage`` of the waited-for workers): other programs on the machine stretch the wall time
but not this, so equal CPU per file at ``--jobs 1`` and ``--jobs 2`` shows the work itself scales.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime
import multiprocessing
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("HEIFKIT_CORPUS", REPO / "tests" / "corpus"))
SCRIPT = Path(sys.executable).with_name("heifkit")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def make_inputs(source: Path, count: int, folder: Path) -> list[Path]:
    """``count`` names for ``source`` in ``folder`` (hard links where the file system allows, else copies)."""
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"IMG_{i:04d}{source.suffix}"
        try:
            os.link(source, path)
        except OSError:
            shutil.copyfile(source, path)
        paths.append(path)
    return paths


def run(inputs: Path, out: Path, jobs: int, fmt: str) -> float:
    """Seconds for ``heifkit convert -r inputs -o out --jobs N``."""
    command = [str(SCRIPT), "convert", "-r", str(inputs), "-o", str(out), "--jobs", str(jobs), "-f", fmt, "--quiet"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"heifkit convert failed ({result.returncode}): {result.stderr}")
    return seconds


def cpu_run(inputs: Path, out: Path, jobs: int, fmt: str) -> tuple[float, float]:
    """(wall seconds, workers' CPU seconds) for ``batch.convert`` of ``inputs`` on a pool of ``jobs`` processes."""
    from heifkit import batch

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # spawn: the workers are this process's children, so their CPU time is counted here once they are reaped
    with cf.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = batch.convert(sorted(inputs.iterdir()), out, executor=pool, format=fmt)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not all(r.status == "converted" for r in results):
        raise SystemExit(f"--jobs {jobs}: not every file converted")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="number of files (default 200)")
    parser.add_argument("--jobs", default="1,2", help="comma-separated --jobs values (default 1,2)")
    parser.add_argument("--source", type=Path, default=CORPUS / "pheif_pug.heic", help="the file copied")
    parser.add_argument("--format", default="jpeg", help="output format (default jpeg)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over the --jobs values; best kept (default 1)")
    parser.add_argument("--cpu", action="store_true", help="also measure the workers' CPU seconds per file")
    args = parser.parse_args()
    if not SCRIPT.is_file():
        raise SystemExit(f"the heifkit console script is not installed next to {sys.executable} (make install)")
    import heifkit

    size = heifkit.open_heif(args.source).size
    versions = f"Python {platform.python_version()}, heifkit {heifkit.__version__}, libheif {heifkit.libheif_version()}"
    print(f"{datetime.date.today()}  {platform.node()}: {cpu_model()}, {os.cpu_count()} cores, {versions}")
    print(f"{args.count} x {args.source.name} ({size[0]}x{size[1]}, {size[0] * size[1] / 1e6:.1f} MP) -> {args.format}")
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="heifkit-bulk-") as tmp:
        inputs = Path(tmp) / "in"
        make_inputs(args.source, args.count, inputs)
        for _ in range(args.repeat):
            for jobs in (int(j) for j in args.jobs.split(",")):
                out = Path(tmp) / f"out-{jobs}"
                load = os.getloadavg()[0]
                seconds = run(inputs, out, jobs, args.format)
                written = sum(1 for _ in out.rglob("*") if _.is_file())
                if written != args.count:
                    raise SystemExit(f"--jobs {jobs}: {written} outputs for {args.count} inputs")
                rates[jobs] = max(rates.get(jobs, 0.0), args.count / seconds)
                print(f"  heifkit convert --jobs {jobs}: {seconds:7.1f} s  {args.count / seconds:6.2f} files/s"
                      f"  (load average before: {load:.2f})", flush=True)  # fmt: skip
                shutil.rmtree(out)
        cpu: dict[int, float] = {}
        for jobs in (int(j) for j in args.jobs.split(",")) if args.cpu else ():
            out = Path(tmp) / f"cpu-{jobs}"
            wall, seconds = cpu_run(inputs, out, jobs, args.format)
            cpu[jobs] = seconds / args.count
            print(f"  batch.convert, {jobs} worker(s): {args.count / wall:6.2f} files/s, "
                  f"CPU {cpu[jobs]:.3f} s/file (load average {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
            shutil.rmtree(out)
        if 1 in cpu and len(cpu) > 1:
            for jobs, seconds in cpu.items():
                if jobs != 1:
                    ideal = jobs * cpu[1] / seconds
                    print(f"  CPU per file, {jobs} workers / 1 worker: {seconds / cpu[1]:.3f} "
                          f"(on {jobs} idle cores: about {ideal:.2f}x the files per second)")  # fmt: skip
    if 1 in rates and len(rates) > 1:
        for jobs, rate in rates.items():
            if jobs != 1:
                print(f"  best: --jobs 1 {rates[1]:.2f} files/s, --jobs {jobs} {rate:.2f} files/s, "
                      f"speed-up {rate / rates[1]:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
