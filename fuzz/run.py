"""Coverage-guided fuzzing of heifkit with atheris (libFuzzer), and the ``make fuzz`` driver.

    python fuzz/run.py --all [--seconds 300] [--targets read,plugin] [--asan] [--timeout 30]   # each in turn
    python fuzz/run.py TARGET [libFuzzer arguments...]                           # one target (child mode)
    python fuzz/run.py --replay TARGET FILE...                                   # inputs through a target

The driver runs each target of ``targets.py`` in its own process for ``--seconds`` (libFuzzer's
``-max_total_time``), with the test corpus as seeds (``tests/corpus`` and ``tests/corpus/bad``, files up to
:data:`MAX_LEN` bytes) and a corpus of its own per target in ``.fuzz/TARGET/corpus`` that grows
from run to run. heifkit's Python code is instrumented for coverage (atheris); libheif and the codecs are
prebuilt, so what guides the fuzzer is the paths heifkit takes through its own code and the errors libheif
returns. Per input: 30 s (a hang is a finding: libFuzzer's ``-timeout``, wall-clock time: ``--timeout`` raises
it on a busy machine, where a niced fuzzer can wait that long for a core), 3 GiB of memory (``-rss_limit_mb``).

``--asan`` preloads the AddressSanitizer runtime that atheris ships (``asan_with_fuzzer.so``) with
``PYTHONMALLOC=malloc``, so every malloc/free and the memcpy/memmove/memset family, in heifkit's C helpers,
libheif and the codecs, are checked for use after free, double free and out-of-bounds access on heap blocks
(the code is not compiled with ``-fsanitize``: only what goes through ASan's interceptors is checked). A
small shim, compiled with ``cc`` on the fly, drops ``RTLD_DEEPBIND`` (ASan refuses it; heifkit opens libheif
with it). libFuzzer stops at the first finding and writes the input to ``.fuzz/TARGET/crash-*``; the
driver prints each target's executions and findings, and exits 1 when there is one.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS = ROOT / "tests" / "corpus"
WORK = ROOT / ".fuzz"  # not build/: make install removes that
MAX_LEN = 32 * 1024
"""Largest seed (and input) in bytes: bigger files take 50 ms+ per execution."""
TIMEOUT = 30
RSS_LIMIT_MB = 3072


def seeds(directory: Path) -> int:
    """Copy the test corpus files up to MAX_LEN bytes into ``directory``; how many."""
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted([*CORPUS.iterdir(), *(CORPUS / "bad").iterdir()]):
        if path.is_file() and path.suffix not in (".tsv", ".md") and path.stat().st_size <= MAX_LEN:
            shutil.copyfile(path, directory / path.name)
            count += 1
    return count


def _asan_env(tmp: Path) -> dict[str, str]:
    runtime = Path(sysconfig.get_paths()["purelib"]) / "asan_with_fuzzer.so"
    if not runtime.is_file():
        raise SystemExit(f"--asan: {runtime} not found (atheris ships it)")
    shim = tmp / "nodeepbind.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-O1", "-o", str(shim), str(ROOT / "tests" / "nodeepbind.c"), "-ldl"], check=True
    )
    return {
        "LD_PRELOAD": f"{shim} {runtime}",
        "PYTHONMALLOC": "malloc",
        "ASAN_OPTIONS": "detect_leaks=0:verify_asan_link_order=0:allocator_may_return_null=1:"
        "handle_segv=1:abort_on_error=0",
    }


_EXECS = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_DONE = re.compile(r"#(\d+)\s+DONE")


def run_target(
    name: str, seconds: int, env: dict[str, str], runs: int | None = None, root: Path = WORK, timeout: int = TIMEOUT
) -> tuple[int, list[Path], int]:
    """Fuzz ``name`` for ``seconds`` with the seeds in ``root/seeds``, in ``root/name``: (executions, inputs of
    findings, libFuzzer's exit status). ``timeout``: seconds of wall-clock time one input may take."""
    work = root / name
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    before = set(work.glob("crash-*")) | set(work.glob("timeout-*")) | set(work.glob("oom-*"))
    args = [
        sys.executable,
        str(HERE / "run.py"),
        name,
        str(corpus),
        str(root / "seeds"),
        f"-max_total_time={seconds}",
        f"-max_len={MAX_LEN}",
        f"-timeout={timeout}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-artifact_prefix={work}/",
        "-print_final_stats=1",
    ]
    if runs is not None:
        args.append(f"-runs={runs}")
    log = work / "log.txt"
    with open(log, "w") as out:
        proc = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
    text = log.read_text(errors="replace")
    found = _EXECS.findall(text) or _DONE.findall(text)
    executions = int(found[-1]) if found else 0
    after = set(work.glob("crash-*")) | set(work.glob("timeout-*")) | set(work.glob("oom-*"))
    return executions, sorted(after - before), proc.returncode


def drive(argv: list[str]) -> int:
    from targets import TARGETS

    parser = argparse.ArgumentParser(prog="fuzz/run.py --all")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--seconds", type=int, default=300, help="per target")
    parser.add_argument("--runs", type=int, default=None, help="stop each target after this many executions")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--asan", action="store_true", help="preload AddressSanitizer")
    parser.add_argument("--timeout", type=int, default=TIMEOUT, help="seconds one input may take (wall clock)")
    options = parser.parse_args(argv)
    names = [n for n in options.targets.split(",") if n]
    unknown = set(names) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; known: {', '.join(TARGETS)}")
    print(f"seed corpus: {seeds(WORK / 'seeds')} files of tests/corpus up to {MAX_LEN} bytes")
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ.copy()
        if options.asan:
            env.update(_asan_env(Path(tmp)))
        total, failed = 0, False
        for name in names:
            start = time.monotonic()
            executions, findings, status = run_target(name, options.seconds, env, options.runs, timeout=options.timeout)
            total += executions
            took = time.monotonic() - start
            print(f"{name:7} {executions:9d} executions in {took:6.0f} s, exit {status}, findings: {len(findings)}")
            for path in findings:
                print(f"        {path}  (replay: python fuzz/run.py --replay {name} {path})")
            if status != 0 or findings:
                failed = True
                print(f"        log: {WORK / name / 'log.txt'}")
        print(f"total   {total:9d} executions{' (AddressSanitizer)' if options.asan else ''}")
    return 1 if failed else 0


def replay(name: str, paths: list[str]) -> int:
    from targets import TARGETS

    for path in paths:
        TARGETS[name](Path(path).read_bytes())
        print(f"{path}: ok")
    return 0


def fuzz_one(name: str, libfuzzer_args: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["heifkit"]):
        import heifkit  # noqa: F401 - instrumented here, used by the targets
    from targets import TARGETS

    atheris.Setup([sys.argv[0], *libfuzzer_args], TARGETS[name])
    atheris.Fuzz()


def main() -> int:
    sys.path.insert(0, str(HERE))
    argv = sys.argv[1:]
    if argv and argv[0] == "--all":
        if importlib.util.find_spec("atheris") is None:
            raise SystemExit("make fuzz needs atheris, which has wheels for x86-64 Linux only (requirements/test.in)")
        return drive(argv)
    if len(argv) >= 3 and argv[0] == "--replay":
        return replay(argv[1], argv[2:])
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        return 2
    fuzz_one(argv[0], argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
