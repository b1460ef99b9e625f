"""tqdm is the ``cli`` extra (``heifkit[cli]``), not a dependency: without it the command line shows a plain
count on a terminal instead of tqdm's bar, and nothing else changes. In process, with tqdm made unimportable
(``sys.modules["tqdm"] = None``); tests/test_cli.py runs the console script on a terminal without it."""

from __future__ import annotations

import functools
import importlib.metadata
import io
import sys
from pathlib import Path

import pytest

import heifkit
from heifkit import batch, cli


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def no_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` raises ImportError
    with pytest.raises(ImportError):
        import tqdm  # noqa: F401


@pytest.fixture
def serial(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's conversions in this process (no pool to start for a file or two)."""
    monkeypatch.setattr(batch, "convert", functools.partial(batch.convert, executor=batch.SerialExecutor()))


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    paths = [tmp_path / "a.heic", tmp_path / "b.heic"]
    for path in paths:
        heifkit.from_bytes("RGB", (16, 8), bytes(range(128)) * 3).save(path)
    return [str(p) for p in paths]


def test_tqdm_is_the_cli_extra_only() -> None:
    """The installed metadata: tqdm is required by the cli extra, by nothing else."""
    requires = importlib.metadata.requires("heifkit") or []
    tqdm = [r for r in requires if r.split(";")[0].strip().startswith("tqdm")]
    assert tqdm and all("extra ==" in r for r in tqdm), tqdm
    assert any('extra == "cli"' in r for r in tqdm), tqdm


def test_a_plain_count_on_a_terminal(
    no_tqdm: None, serial: None, inputs: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal, stdout = Terminal(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", stdout)
    assert cli.main(["convert", *inputs, "-o", str(tmp_path / "out")]) == cli.EXIT_OK
    assert terminal.getvalue() == "\r0/2 files (0%)\r1/2 files (50%)\r2/2 files (100%)\n"
    assert stdout.getvalue() == "2 converted, 0 skipped, 0 failed\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg", "b.jpg"]


def test_verbose_lines_above_the_count(
    no_tqdm: None, serial: None, inputs: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ``--verbose`` line clears the count, which is drawn again below it (as tqdm.write does)."""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", terminal)  # both on the terminal, as in an interactive shell
    out = tmp_path / "out"
    assert cli.main(["convert", inputs[0], str(tmp_path / "missing.heic"), "-o", str(out), "-v"]) == cli.EXIT_FAILED
    missing = tmp_path / "missing.heic"

    def blank(count: str) -> str:
        return "\r" + " " * len(count) + "\r"

    assert terminal.getvalue().split("\n") == [
        f"\r0/2 files (0%){blank('0/2 files (0%)')}converted: {inputs[0]} -> {out / 'a.jpg'}",
        f"\r0/2 files (0%)\r1/2 files (50%){blank('1/2 files (50%)')}failed: {missing} (no such file: {missing})",
        "\r1/2 files (50%)\r2/2 files (100%)",
        f"failed: {missing}: no such file: {missing}",  # the summary, after the count's last line
        "1 converted, 0 skipped, 1 failed",
        "",
    ]


def test_no_count_when_not_a_terminal_or_quiet(
    no_tqdm: None, serial: None, inputs: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for stderr, args in ((io.StringIO(), []), (Terminal(), ["--quiet"])):
        stdout = io.StringIO()
        monkeypatch.setattr(sys, "stderr", stderr)
        monkeypatch.setattr(sys, "stdout", stdout)
        assert cli.main(["convert", *inputs, "-o", str(tmp_path / "out"), "--overwrite", *args]) == cli.EXIT_OK
        assert stderr.getvalue() == ""
        assert stdout.getvalue() == ("" if args else "2 converted, 0 skipped, 0 failed\n")
