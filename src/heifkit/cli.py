"""The ``heifkit`` command (also ``python -m heifkit``): ``heifkit info``, ``heifkit convert`` and ``heifkit edit``.

This module parses arguments, expands inputs, shows progress and prints the summary; what a file holds
comes from :mod:`heifkit.fileinfo`, conversion and editing from :mod:`heifkit.batch`.

Exit status: 0 when every file was read, converted or edited (or skipped because its output exists), 1 when
any file failed, 2 for a usage error, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path, PurePath
from typing import Any, TextIO

from . import batch, fileinfo
from ._version import __version__

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "info":
            return _info(args)
        if args.command == "edit":
            return _edit(args, args.subparser)
        return _convert(args, args.subparser)
    except KeyboardInterrupt:
        print("heifkit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`heifkit info ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heifkit", description="Read, convert and edit HEIF/HEIC and AVIF images.")
    parser.add_argument("--version", action="version", version=f"heifkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = commands.add_parser("info", help="show what HEIF/AVIF files hold", description=_INFO_HELP)
    info.add_argument("files", nargs="*", metavar="FILE")
    info.add_argument("--json", action="store_true", help="print JSON (its shape: --schema)")
    info.add_argument("--schema", action="store_true", help="print the JSON Schema of --json output and exit")
    info.set_defaults(subparser=info)

    convert = commands.add_parser(
        "convert", help="convert images to JPEG, PNG, WebP, TIFF, HEIC or AVIF", description=_CONVERT_HELP
    )
    convert.set_defaults(subparser=convert)
    convert.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders (with -r) or glob patterns")
    convert.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output folder (created if needed); with one input file, may name the output file",
    )
    convert.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="convert the images under folders, keeping their folder structure under OUT",
    )
    out = convert.add_argument_group("output")
    out.add_argument(
        "-f",
        "--format",
        type=str.lower,
        choices=sorted({*batch.FORMATS, "jpg", "tif", "heif"}),
        help="output format (default: from OUT's extension, else jpeg)",
    )
    out.add_argument("--quality", type=int, help="0..100 (default: 90 for JPEG/WebP, the encoder's for HEIC/AVIF)")
    out.add_argument("--speed", type=int, help="HEIC/AVIF encoder speed, 0 (slow, small) .. 10 (fast)")
    out.add_argument("--chroma", type=int, choices=(420, 422, 444), help="chroma subsampling (JPEG, HEIC, AVIF)")
    out.add_argument("--lossless", action="store_true", help="lossless (WebP, HEIC, AVIF; PNG and TIFF always are)")
    out.add_argument(
        "--bit-depth",
        type=int,
        choices=(8, 10, 12),
        help="HEIC/AVIF: 8, 10 or 12 (default: the source's); 8 makes 16-bit grey PNG/TIFF 8-bit",
    )
    out.add_argument(
        "--all-images",
        action="store_true",
        help="every image of multi-image files (HEIC/AVIF: in one file; others: NAME-1, NAME-2...)",
    )
    size = out.add_mutually_exclusive_group()
    size.add_argument("--resize", type=_box, metavar="WxH", help="fit into WxH (W or xH alone: that side only)")
    size.add_argument("--max-size", type=int, metavar="N", help="shrink so the longer side is at most N pixels")
    meta = convert.add_argument_group("metadata")
    meta.add_argument("--strip", action="store_true", help="drop EXIF, XMP, IPTC and ICC")
    meta.add_argument("--to-srgb", action="store_true", help="convert colours from the ICC profile to sRGB")
    meta.add_argument(
        "--hdr",
        choices=("keep", "pq", "hlg", "sdr"),
        default="keep",
        help="HDR photos (gain maps, PQ/HLG): keep them as SDR + gain map (HEIC/AVIF; a gain map the target "
        "cannot hold is computed again in its codec), write a PQ or HLG image, or the SDR picture only "
        "(default: keep; JPEG/PNG/WebP get the SDR picture)",
    )
    _running_options(convert, "converted")
    _edit_parser(commands)
    return parser  # fmt: skip


def _running_options(command: argparse.ArgumentParser, done: str) -> None:
    """The options ``convert`` and ``edit`` share: parallelism, existing outputs, failures, what is printed."""
    run = command.add_argument_group("running")
    run.add_argument("-j", "--jobs", type=int, help=f"files {done} at once (default: cores, {os.cpu_count()})")
    run.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    run.add_argument("-k", "--keep-going", action="store_true", help="go on after a file fails")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary (failures are still shown)")
    run.add_argument("-v", "--verbose", action="store_true", help="print a line for every file")


def _edit_parser(commands: Any) -> None:
    edit = commands.add_parser(
        "edit",
        help="rotate, flip, crop HEIC/AVIF files or change their metadata, without re-encoding",
        description=_EDIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    edit.set_defaults(subparser=edit)
    edit.add_argument("inputs", nargs="+", metavar="INPUT", help="HEIC/AVIF files, folders (with -r) or glob patterns")
    edit.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="write the edited files into this folder (created if needed; with one input file, may name the "
        "output file) instead of replacing the inputs",
    )
    edit.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="edit the .heic/.heif/.hif/.avif files under folders (with -o: same structure under OUT)",
    )
    edit.add_argument(
        "--all-images",
        action="store_true",
        help="edit every top-level image of multi-image files (default: the primary image only)",
    )
    geometry = edit.add_argument_group("geometry (lossless: irot, imir, clap)")
    geometry.add_argument("--rotate", type=int, choices=(90, 180, 270), help="rotate CLOCKWISE by this many degrees")
    geometry.add_argument(
        "--flip",
        choices=("horizontal", "vertical"),
        help="mirror: horizontal = left-right, vertical = top-bottom (after --rotate)",
    )
    geometry.add_argument(
        "--crop",
        type=_crop_box,
        metavar="BOX",
        help="keep WxH+X+Y (as jpegtran) or LEFT,TOP,RIGHT,BOTTOM of the image as shown after "
        "--rotate/--flip; 4:2:0 images need an even X and Y (4:2:2: an even X)",
    )
    geometry.add_argument(
        "--orientation",
        type=_orientation,
        metavar="N|bake",
        help="set the EXIF orientation tag to N (1..8; informational in HEIF), or 'bake': turn "
        "the image as its EXIF/XMP orientation says and set the tag to 1",
    )
    meta = edit.add_argument_group("metadata")
    meta.add_argument("--strip", action="store_true", help="remove EXIF, XMP and IPTC (the ICC profile stays)")
    meta.add_argument("--strip-icc", action="store_true", help="remove the ICC profile")
    meta.add_argument(
        "--set-exif",
        type=Path,
        metavar="FILE",
        help="replace the EXIF with FILE's bytes (a TIFF header first, or Exif\\0\\0 and one)",
    )
    meta.add_argument("--set-xmp", type=Path, metavar="FILE", help="replace the XMP with FILE's bytes (an XMP packet)")
    meta.add_argument("--remove-thumbnails", action="store_true", help="remove the embedded thumbnails")
    meta.add_argument("--primary", type=int, metavar="N", help="make image N (0: the first) the primary image")
    _running_options(edit, "edited")


_INFO_HELP = """Show each file's images (primary, size, mode, bit depth, codec), colour (ICC/NCLX), an EXIF
summary (camera, date, orientation), XMP, thumbnails, depth, auxiliary images, gain maps, HDR metadata and
sequence tracks (listed, not decoded). Exit status 1 when a file cannot be read."""

_CONVERT_HELP = """Convert HEIC, AVIF, JPEG, PNG, TIFF and WebP files. Outputs keep the input's name with the
format's extension. EXIF (orientation set to 1 once pixels are upright), XMP and ICC are kept unless --strip.
Existing outputs are skipped unless --overwrite; outputs are written to a temporary file and renamed."""


_EDIT_HELP = """Edit HEIC and AVIF files without decoding or re-encoding them: rotation and
mirroring are written as the image's irot/imir properties, a crop as its clap
property, and metadata as items; the coded image stays as it is. Files are
replaced atomically (a temporary file, renamed) unless -o names where to write
them. An edit that would need an encode (a crop starting between two chroma
samples of a 4:2:0 image, a file holding an image sequence...) fails with the
reason, and that file is left untouched.

--rotate counts degrees CLOCKWISE, as jpegtran and exiftool do. Edits are
applied in this order: --set-exif and --set-xmp, --orientation bake, --rotate,
--flip, --crop, --strip and --strip-icc, --orientation N, --remove-thumbnails.
They apply to the primary image (after --primary) unless --all-images; the
other images of a multi-image file are left as they are. Any turn resets the
EXIF orientation to 1 (irot/imir say how the image is shown)."""


def _crop_box(text: str) -> tuple[int, int, int, int]:
    """``WxH+X+Y`` (``+X+Y`` may be left out: 0, 0) or ``LEFT,TOP,RIGHT,BOTTOM`` -> (left, top, right, bottom)."""
    try:
        if "," in text:
            left, top, right, bottom = (int(v) for v in text.split(","))
        else:
            size, *offsets = text.lower().split("+")
            width, height = (int(v) for v in size.split("x"))
            left, top = (int(v) for v in offsets) if offsets else (0, 0)
            right, bottom = left + width, top + height
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH+X+Y or LEFT,TOP,RIGHT,BOTTOM, not {text!r}") from None
    if min(left, top) < 0 or right <= left or bottom <= top:
        raise argparse.ArgumentTypeError(f"an empty or negative box: {text!r}")
    return left, top, right, bottom


def _orientation(text: str) -> int | str:
    if text.lower() == "bake":
        return "bake"
    if text.isdigit() and 1 <= int(text) <= 8:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected 1..8 or bake, not {text!r}")


def _box(text: str) -> tuple[int | None, int | None]:
    """``WxH``, ``W``, ``Wx`` or ``xH`` -> (width, height), None for a side not given."""
    width, _, height = text.lower().partition("x")
    try:
        box = (int(width) if width else None, int(height) if height else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, WIDTH or xHEIGHT, not {text!r}") from None
    if box == (None, None) or any(side is not None and side < 1 for side in box):
        raise argparse.ArgumentTypeError(f"expected positive sizes, not {text!r}")
    return box


# --- info ----------------------------------------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    if args.schema:
        print(json.dumps(fileinfo.INFO_SCHEMA, indent=2))
        return EXIT_OK
    if not args.files:
        print("heifkit info: error: give at least one FILE", file=sys.stderr)
        return EXIT_USAGE
    entries = [fileinfo.describe(path) for path in args.files]
    if args.json:
        print(json.dumps({"schema": fileinfo.SCHEMA_ID, "files": entries}, indent=2))
    else:
        print("\n\n".join(fileinfo.render(entry) for entry in entries))
    return EXIT_OK if all(entry["ok"] for entry in entries) else EXIT_FAILED


# --- convert -------------------------------------------------------------------------------------------


def _convert(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    output = Path(args.output)
    single = _single_output(args, output, _format_of(output) is not None and not args.all_images)
    fmt = args.format or (_format_of(output) if single else "jpeg")
    names = ("quality", "speed", "chroma", "lossless", "bit_depth", "all_images", "resize", "max_size", "overwrite")
    options = {"format": fmt, **_values(args, *names, "strip", "to_srgb", "hdr")}
    try:
        batch.ConvertOptions(**options)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc).replace("_", "-"))
    return _run_files(args, parser, output, single, batch.IMAGE_EXTENSIONS, functools.partial(batch.convert, **options))


# --- edit ----------------------------------------------------------------------------------------------


def _edit(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    names = ("flip", "crop", "orientation", "strip", "strip_icc", "remove_thumbnails", "primary", "all_images")
    options = _values(args, *names, "overwrite")
    options.update(
        rotate=args.rotate or 0,
        exif=_read_option_file(parser, "--set-exif", args.set_exif),
        xmp=_read_option_file(parser, "--set-xmp", args.set_xmp),
    )
    try:
        batch.EditOptions(**options)
    except (TypeError, ValueError) as exc:
        field, _, rest = str(exc).partition(" ")
        parser.error(f"--set-{field}: the file {rest}" if field in ("exif", "xmp") else str(exc).replace("_", "-"))
    output = None if args.output is None else Path(args.output)  # None: the inputs are edited in place
    single = output is not None and _single_output(args, output, output.suffix.lower() in batch.EDIT_EXTENSIONS)
    return _run_files(args, parser, output, single, batch.EDIT_EXTENSIONS, functools.partial(batch.edit, **options))


def _read_option_file(parser: argparse.ArgumentParser, option: str, path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        parser.error(f"{option}: cannot read {path}: {exc.strerror or exc}")


# --- running many files (convert, edit) ----------------------------------------------------------------


def _values(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options ``names`` (``batch``'s keywords, as argparse names them) and their values."""
    return {name: getattr(args, name) for name in names}


_DONE = {"convert": "converted", "edit": "edited"}

Run = Callable[..., list[batch.FileResult]]
"""``batch.convert`` or ``batch.edit`` with the options: (sources, out_dir, jobs=, keep_going=, on_result=)."""


def _run_files(
    args: argparse.Namespace, parser: argparse.ArgumentParser, output: Path | None, single: bool,
    extensions: frozenset[str], run: Run,
) -> int:  # fmt: skip
    """Expand the inputs, run them with progress, print the summary; the exit status. ``output``: ``-o`` (None:
    in place), the output file itself when ``single``."""
    out_dir = output if output is None or not single else output.parent
    if output is not None and not single and output.exists() and not output.is_dir():
        parser.error(f"{output} is a file: give a folder for -o (or one input file to write to it)")
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1")
    sources, errors = batch.expand_inputs(args.inputs, args.recursive, exclude=out_dir, extensions=extensions)
    if single:
        assert output is not None
        sources = [batch.Source(sources[0].path, PurePath(output.name))]
    if not sources and not errors:
        parser.error("no images found in the inputs")
    progress = _Progress(len(sources) + len(errors), args.quiet, args.verbose, _DONE[args.command])
    for error in errors:
        progress(error)
    try:
        results = run(sources, out_dir, jobs=args.jobs, keep_going=args.keep_going, on_result=progress)
    finally:
        progress.close()
    results = errors + results
    _print_summary(results, args.quiet, args.command)
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def _single_output(args: argparse.Namespace, output: Path, names_a_file: bool) -> bool:
    """True when OUT names the output file: one input file, OUT is no folder, and ``names_a_file`` (OUT has an
    extension of the output format)."""
    if len(args.inputs) != 1 or args.recursive or output.is_dir() or not Path(args.inputs[0]).is_file():
        return False
    return names_a_file


def _format_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return next((fmt for fmt, extensions in batch.FORMATS.items() if suffix in extensions), None)


class _Progress:
    """Reports each result: a bar on stderr when it is a terminal (tqdm's, from the ``cli`` extra, else a plain
    :class:`_Count`), a line per file with ``--verbose``."""

    def __init__(self, total: int, quiet: bool, verbose: bool, done: str = "converted") -> None:
        self.verbose, self.done = verbose, done  # done: what a "converted" result is called (edited...)
        self.bar: Any = None
        if not quiet and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:  # installed without heifkit[cli]: the command works all the same
                self.bar = _Count(total, sys.stderr)
                return
            try:
                columns = os.get_terminal_size(sys.stderr.fileno()).columns
            except OSError:
                columns = 0
            # a terminal that reports no width (some consoles) gets 80 columns instead of an empty bar
            self.bar = tqdm(total=total, unit="file", file=sys.stderr, dynamic_ncols=columns > 0, ncols=columns or 80)

    def __call__(self, result: batch.FileResult) -> None:
        if self.verbose:
            converted = result.status == "converted"
            line = f"{self.done if converted else result.status}: {result.source}"
            if result.outputs and converted and result.outputs != [result.source]:
                line += " -> " + ", ".join(result.outputs)
            elif result.reason:
                line += f" ({result.reason})"
            if result.notes:
                line += f" [{'; '.join(result.notes)}]"
            self._write(line, sys.stdout)
        if self.bar is not None:
            self.bar.update(1)

    def _write(self, line: str, stream: TextIO) -> None:
        if self.bar is not None:
            self.bar.write(line, file=stream)
        else:
            print(line, file=stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Count:
    """The progress bar without tqdm: one line, ``3/10 files (30%)``, redrawn after a carriage return.

    The part of tqdm's interface ``_Progress`` uses (``update``, ``write``, ``close``); no escape sequences,
    so that it reads the same on any terminal.
    """

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.done, self.stream, self.shown = total, 0, stream, ""  # shown: the line on the screen
        self._draw()

    def _draw(self) -> None:
        percent = 100 * self.done // self.total if self.total else 100
        self.shown = f"{self.done}/{self.total} files ({percent}%)"  # never shorter than the one it draws over
        self.stream.write("\r" + self.shown)
        self.stream.flush()

    def _clear(self) -> None:
        self.stream.write("\r" + " " * len(self.shown) + "\r")

    def update(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def write(self, line: str, file: TextIO) -> None:
        """Print ``line`` on a line of its own, the count redrawn below it (as ``tqdm.write``)."""
        self._clear()
        self.stream.flush()
        print(line, file=file, flush=True)
        self._draw()

    def close(self) -> None:
        self.stream.write("\n")  # the last count stays on the screen, as tqdm's bar does
        self.stream.flush()


def _print_summary(results: list[batch.FileResult], quiet: bool, command: str = "convert") -> None:
    for result in results:
        if result.status == "failed":
            print(f"failed: {result.source}: {result.reason}", file=sys.stderr)
    for result in results:
        for note in result.notes if not quiet else ():
            if "dropped" in note or "not converted" in note or "left as they are" in note:
                print(f"note: {result.source}: {note}", file=sys.stderr)
    if quiet:
        return
    counts = batch.summary(results)
    text = f"{counts['converted']} {_DONE[command]}, {counts['skipped']} skipped, {counts['failed']} failed"
    if counts["cancelled"]:
        text += f", {counts['cancelled']} not started (use --keep-going to {command} them anyway)"
    print(text)
