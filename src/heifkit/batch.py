"""Bulk conversion (and lossless editing, :func:`edit`) over any ``concurrent.futures.Executor``: a process pool
by default, a Dask cluster's executor (``client.get_executor()``), a thread pool, or :class:`SerialExecutor`.

```python
from heifkit import batch

results = batch.convert(["IMG_0001.HEIC", "IMG_0002.HEIC"], "out", format="jpeg", quality=85)
failed = [r for r in results if r.status == "failed"]
```

Each file is one task (:func:`convert_file`, picklable). Outputs are written to a temporary file in the output
folder and renamed into place, and existing files are never replaced without ``overwrite=True``. A worker
process that dies on a file (a crash, the out-of-memory killer) marks that file failed and the run goes on.
"""

from __future__ import annotations

import concurrent.futures as cf
import glob
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePath
from typing import Any

from ._convert import edit as _edit
from ._convert import pipeline as _convert
from ._convert.edit import EDIT_EXTENSIONS, EditOptions
from ._convert.formats import FORMATS, ConvertOptions, temp_files

__all__ = [
    "EDIT_EXTENSIONS",
    "FORMATS",
    "IMAGE_EXTENSIONS",
    "ConvertOptions",
    "EditOptions",
    "FileResult",
    "Job",
    "SerialExecutor",
    "Source",
    "convert",
    "convert_file",
    "edit",
    "expand_inputs",
    "plan",
    "summary",
]

IMAGE_EXTENSIONS = frozenset(
    [".heic", ".heif", ".hif", ".avif", ".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".webp"]
)
"""Files taken from a folder (``expand_inputs(recursive=True)``); a file named explicitly is always tried."""

_STATUSES = ("converted", "skipped", "failed", "cancelled")


@dataclass(frozen=True)
class Source:
    """An input file and its output name relative to the output folder (its extension is replaced)."""

    path: Path
    name: PurePath

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> Source:
        """A file whose output goes straight into the output folder, under its own name."""
        return cls(Path(path), PurePath(Path(path).name))


@dataclass
class FileResult:
    """What happened to one input.

    ``status``: ``converted`` (``outputs`` written: converted, or edited by :func:`edit`), ``skipped`` (every
    output existed; ``outputs`` are those files), ``failed`` (``reason`` says why) or ``cancelled`` (not
    started: an earlier file failed and ``keep_going`` was off). ``notes``: what was done besides (an embedded
    thumbnail used for a resize, EXIF too long for JPEG dropped, ...). ``seconds`` is left out of comparisons.
    """

    source: str
    status: str
    outputs: list[str] = field(default_factory=list)
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = field(default=0.0, compare=False)

    @property
    def ok(self) -> bool:
        """True unless the file failed or was not converted because another one failed."""
        return self.status in ("converted", "skipped")

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-able values."""
        return asdict(self)


@dataclass(frozen=True)
class Job:
    """One file's work, as sent to a worker: picklable, with everything :func:`convert_file` needs."""

    source: str
    target: str  # the output path (an edit in place: the source); with all_images and several images, NAME-1...
    options: ConvertOptions | EditOptions  # an EditOptions job edits the file (_convert.edit)
    decode_threads: int = 1


def convert_file(job: Job) -> FileResult:
    """Convert or edit one file (the task each worker runs). Errors become a ``failed`` result, never an
    exception."""
    start = time.perf_counter()
    notes: list[str] = []
    try:
        if isinstance(job.options, EditOptions):
            outputs, names = _edit.edit(job.source, Path(job.target), job.options, notes)
        else:
            outputs, names = _convert.convert(job.source, Path(job.target), job.options, job.decode_threads, notes)
    except Exception as exc:  # any failure is this file's, and the batch goes on
        return FileResult(job.source, "failed", [], _reason(exc), notes, time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if outputs:
        return FileResult(job.source, "converted", outputs, "", notes, seconds)
    reason = "output exists (use --overwrite to replace it)"
    return FileResult(job.source, "skipped", [str(n) for n in names], reason, notes, seconds)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"no such file: {exc.filename}"
    if isinstance(exc, IsADirectoryError):
        return f"is a folder: {exc.filename}"
    return f"{type(exc).__name__}: {exc}"


# --- inputs and outputs --------------------------------------------------------------------------------


def expand_inputs(
    inputs: Iterable[str | os.PathLike[str]],
    recursive: bool = False,
    exclude: str | os.PathLike[str] | None = None,
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
) -> tuple[list[Source], list[FileResult]]:
    """Files, folders and glob patterns -> sources (in a stable order), and a failed result for each input
    that names nothing.

    A file is taken as it is (output name: its own). A folder needs ``recursive``: the image files under it
    (``extensions``, lower case: :data:`IMAGE_EXTENSIONS`, or :data:`EDIT_EXTENSIONS` for :func:`edit`; hidden
    files and folders left out) keep their path relative to it. A pattern
    (``*``, ``?``, ``[``) that is not an existing file is expanded with :func:`glob.glob` (``**`` included).
    Files under ``exclude`` (the output folder) are left out of folders and patterns.
    """
    skip = Path(exclude).resolve() if exclude is not None else None
    suffixes = frozenset(extensions)
    sources: list[Source] = []
    errors: list[FileResult] = []
    seen: set[Path] = set()

    def add(source: Source) -> None:
        key = source.path.resolve()
        if key not in seen:
            seen.add(key)
            sources.append(source)

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            if not recursive:
                errors.append(FileResult(str(path), "failed", reason="is a folder (use -r for the images in it)"))
                continue
            for file in _walk(path, skip, suffixes):
                add(Source(file, PurePath(file.relative_to(path))))
        elif path.exists() or not any(c in str(item) for c in "*?["):
            add(Source.of(path))  # a missing file fails when it is converted, with the reason
        else:
            matches = sorted(glob.glob(str(item), recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file() and not _under(Path(m), skip)]
            if not files:
                errors.append(FileResult(str(item), "failed", reason="no file matches this pattern"))
            for file in files:
                add(Source.of(file))
    return sources, errors


def _under(path: Path, folder: Path | None) -> bool:
    return folder is not None and path.resolve().is_relative_to(folder)


def _walk(folder: Path, skip: Path | None, suffixes: frozenset[str]) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        if _under(Path(root), skip):
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in suffixes:
                found.append(Path(root, name))
    return found


def plan(
    sources: Iterable[Source | str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] | None,
    options: ConvertOptions | EditOptions,
) -> list[Job | FileResult]:
    """The job of each source (its output path: its name under ``out_dir``, with the format's extension for a
    conversion unless it has one of the format's extensions already; an edit keeps the name, and with
    ``out_dir`` None edits the source in place), or a failed result when two sources would write the same file
    (compared without case: the first one keeps the name).

    Raises:
        ValueError: ``out_dir`` is None for a conversion.
    """
    if out_dir is None and not isinstance(options, EditOptions):
        raise ValueError("a conversion needs an output folder")
    taken: dict[str, str] = {}
    planned: list[Job | FileResult] = []
    for item in sources:
        source = item if isinstance(item, Source) else Source.of(item)
        name = source.name
        if isinstance(options, ConvertOptions) and name.suffix.lower() not in FORMATS[options.format]:
            name = name.with_name(name.name.removesuffix(name.suffix) + options.extension)
        target = source.path if out_dir is None else Path(out_dir) / name
        key = os.path.normcase(str(target)).casefold()
        if key in taken:
            reason = f"output name clash: {target} is also the output of {taken[key]}; run them separately"
            planned.append(FileResult(str(source.path), "failed", reason=reason))
            continue
        taken[key] = str(source.path)
        planned.append(Job(str(source.path), str(target), options))
    return planned


# --- running -------------------------------------------------------------------------------------------


class SerialExecutor(cf.Executor):
    """An executor that runs each task at once in the calling thread (debugging, reference results)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


def convert(
    paths: Iterable[Source | str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    executor: cf.Executor | None = None,
    jobs: int | None = None,
    keep_going: bool = True,
    on_result: Callable[[FileResult], None] | None = None,
    **options: Any,
) -> list[FileResult]:
    """Convert ``paths`` (files, or :class:`Source` items from :func:`expand_inputs`) into ``out_dir``.

    Args:
        executor: where files are converted. None: a process pool of ``jobs`` workers (default: the number
            of cores), made and shut down here. Any ``concurrent.futures.Executor`` works, such as a Dask
            client's ``client.get_executor()``; a process pool that breaks is replaced by a new one.
        jobs: worker processes of the default pool.
        keep_going: False: after a failed file, start no other (those are ``cancelled``).
        on_result: called with each result as it arrives (in the calling thread), e.g. for progress.
        **options: :class:`ConvertOptions` fields (``format``, ``quality``, ``resize``, ``overwrite``...).

    Returns:
        One :class:`FileResult` per input, in input order.

    Raises:
        TypeError, ValueError: bad options (before anything is converted).
    """
    opts = ConvertOptions(**options)
    return _run_planned(plan(paths, out_dir, opts), executor, jobs, keep_going, on_result, opts.decode_threads)


def edit(
    paths: Iterable[Source | str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    executor: cf.Executor | None = None,
    jobs: int | None = None,
    keep_going: bool = True,
    on_result: Callable[[FileResult], None] | None = None,
    **options: Any,
) -> list[FileResult]:
    """Edit HEIC/AVIF files without re-encoding them (``heifkit edit``): in place (atomically) when ``out_dir`` is
    None, else into ``out_dir`` under their own names (existing files kept unless ``overwrite=True``).

    ``**options`` are :class:`EditOptions` fields (``rotate`` clockwise, ``flip``, ``crop``, ``orientation``,
    ``strip``...); the other arguments are :func:`convert`'s, and so are the results: ``converted`` means the
    edited file was written. An edit that would need an encode fails its file, which is left as it was.

    Raises:
        TypeError, ValueError: bad options (before anything is edited).
    """
    opts = EditOptions(**options)
    return _run_planned(plan(paths, out_dir, opts), executor, jobs, keep_going, on_result, None)


def _run_planned(
    planned: list[Job | FileResult],
    executor: cf.Executor | None,
    jobs: int | None,
    keep_going: bool,
    on_result: Callable[[FileResult], None] | None,
    decode_threads: int | None,
) -> list[FileResult]:
    """Run the jobs of ``planned`` (as :func:`convert` describes); one result per item, in order."""
    todo = [(i, p) for i, p in enumerate(planned) if isinstance(p, Job)]
    results: dict[int, FileResult] = {i: p for i, p in enumerate(planned) if isinstance(p, FileResult)}
    for result in results.values():
        if on_result:
            on_result(result)
    cores = os.cpu_count() or 1
    workers = max(1, min(jobs or cores, len(todo) or 1))
    # Files run in parallel, one thread each (libheif's tiles and the codec alike: --jobs N uses N cores); only
    # cores that no file would use go to a file's decoder.
    threads = decode_threads or max(1, cores // max(1, len(todo)))
    todo = [(i, replace(job, decode_threads=threads)) for i, job in todo]
    pool = executor if executor is not None else _process_pool(workers)
    current = [pool]  # the pool in use: _run replaces a broken one
    try:
        _run(current, todo, results, keep_going, on_result, _capacity(pool, workers))
    except BaseException:
        if current[0] is not executor:
            current[0].shutdown(wait=False, cancel_futures=True)  # interrupted: do not wait for the workers
        raise
    if current[0] is not executor:
        current[0].shutdown(wait=True)
    return [results[i] for i in range(len(planned))]


def _process_pool(workers: int) -> cf.ProcessPoolExecutor:
    # forkserver: workers do not inherit the caller's threads (forking a threaded process can deadlock)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _capacity(executor: cf.Executor, default: int) -> int:
    """Tasks kept in flight: twice the workers, so none waits for the next task (and a crash costs few retries)."""
    if isinstance(executor, SerialExecutor):
        return 1  # each task runs when it is submitted: one at a time, so that a failure can stop the rest
    workers = getattr(executor, "_max_workers", None)
    client = getattr(executor, "_client", None)  # a Dask ClientExecutor
    if client is not None:
        try:
            workers = sum(client.nthreads().values())
        except Exception:  # a client that cannot tell: fall back to the cores here
            workers = None
    return 2 * max(1, workers or default)


def _run(
    current: list[cf.Executor],
    todo: list[tuple[int, Job]],
    results: dict[int, FileResult],
    keep_going: bool,
    on_result: Callable[[FileResult], None] | None,
    capacity: int,
) -> None:
    """Run ``todo`` on ``current[0]``, filling ``results``; a broken process pool is replaced in ``current``.

    When a worker process dies, every task in flight fails with ``BrokenExecutor`` and nothing tells which
    one killed it: those are retried one at a time on a new pool, and one that breaks that pool alone is the
    file that failed.
    """
    started = time.time()
    queue = deque(todo)
    suspects: deque[tuple[int, Job]] = deque()
    in_flight: dict[cf.Future[FileResult], tuple[int, Job, bool]] = {}
    stop = False

    def finish(index: int, result: FileResult) -> None:
        nonlocal stop
        results[index] = result
        stop = stop or (not keep_going and result.status == "failed")
        if on_result:
            on_result(result)

    replacements = 0
    while queue or suspects or in_flight:
        broken = False
        while not stop and (suspects or queue) and len(in_flight) < (1 if suspects else capacity):
            isolated = bool(suspects)
            pending = suspects if isolated else queue
            index, job = pending.popleft()
            try:
                future = current[0].submit(convert_file, job)
            except cf.BrokenExecutor:  # it broke since the last results came in: this task never ran
                pending.appendleft((index, job))
                broken = True
                break
            in_flight[future] = (index, job, isolated)
        if not in_flight and not broken:
            break
        if not broken:
            done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
            broken = _collect(done, in_flight, suspects, finish, started)
        if broken:
            # the other tasks on the broken pool: those that finished keep their result, the rest are suspects
            _collect(cf.wait(in_flight, timeout=_SETTLE_SECONDS).done, in_flight, suspects, finish, started)
            suspects.extend((index, job) for index, job, _ in in_flight.values())
            in_flight.clear()
            replacement = _replace(current[0])
            for _, job in suspects:  # what the workers stopped with the broken pool left half-written
                _clean_temp_files(job)
            replacements += 1
            if replacement is None or replacements > len(todo) + 2:  # each replacement finds one crashing file
                reason = f"the executor broke ({type(current[0]).__name__}) and cannot be replaced"
                for index, job in list(suspects) + list(queue):
                    finish(index, FileResult(job.source, "failed", reason=reason))
                suspects.clear()
                queue.clear()
                break
            current[0] = replacement
    for index, job in list(suspects) + list(queue):
        finish(index, FileResult(job.source, "cancelled", reason="not started: an earlier file failed"))


_DIED = "the worker process died converting this file (a crash, or killed for lack of memory)"
_SETTLE_SECONDS = 60.0  # a broken pool fails its other tasks at once; this only bounds the wait


def _collect(
    futures: Iterable[cf.Future[FileResult]],
    in_flight: dict[cf.Future[FileResult], tuple[int, Job, bool]],
    suspects: deque[tuple[int, Job]],
    finish: Callable[[int, FileResult], None],
    started: float,
) -> bool:
    """Take the results of finished ``futures``; True when one says the executor broke (its task becomes a
    suspect, or has failed when it ran alone). ``started``: when the run began (``time.time()``)."""
    broken = False
    for future in futures:
        index, job, isolated = in_flight.pop(future)
        try:
            result = future.result()
        except cf.BrokenExecutor:
            broken = True
            if isolated:
                _clean_temp_files(job)
                finish(index, FileResult(job.source, "failed", reason=_DIED))
            else:
                suspects.append((index, job))
        except cf.CancelledError:
            suspects.append((index, job))
        except Exception as exc:  # the executor's own failure (Dask's KilledWorker, pickling)
            _clean_temp_files(job)
            finish(index, FileResult(job.source, "failed", reason=f"worker error: {_reason(exc)}"))
        else:
            finish(index, _own_outputs(result, started) if isolated else result)
    return broken


_CLOCK_SLACK = 1.0
"""Seconds a file's modification time may lag ``time.time()`` (file systems stamp with a coarser clock)."""


def _own_outputs(result: FileResult, started: float) -> FileResult:
    """The result of a task retried alone. Its first run may have written every output before the pool broke
    and lost its result: the retry then finds them and would report the file skipped. Outputs written since
    the run began are its own, so the file was converted."""
    if result.status != "skipped" or not result.outputs:
        return result
    try:
        ours = all(Path(o).stat().st_mtime >= started - _CLOCK_SLACK for o in result.outputs)
    except OSError:
        return result
    return replace(result, status="converted", reason="") if ours else result


def _replace(pool: cf.Executor) -> cf.Executor | None:
    """A new process pool for a broken one, once the broken one's workers are gone (it stops them when one
    dies, whatever they were writing); None for other executors, which heifkit cannot remake."""
    if not isinstance(pool, cf.ProcessPoolExecutor):
        return None
    workers = getattr(pool, "_max_workers", None) or os.cpu_count() or 1
    pool.shutdown(wait=True, cancel_futures=True)
    return _process_pool(workers)


def _clean_temp_files(job: Job) -> None:
    """Remove what a worker that died left half-written for ``job`` (its own temporary files only)."""
    for path in temp_files(Path(job.target)):
        try:
            path.unlink()
        except OSError:
            pass


def summary(results: Iterable[FileResult]) -> dict[str, int]:
    """How many results have each status (``converted``, ``skipped``, ``failed``, ``cancelled``)."""
    counts = dict.fromkeys(_STATUSES, 0)
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts
