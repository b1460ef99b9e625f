"""Run the examples of Markdown pages as doctests: a page's ```pycon blocks, in order, in one namespace.

Usage: python tests/mddoctest.py PAGE.md [PAGE.md ...]

Needs nothing but the standard library and heifkit, so that a freshly installed wheel can run the quick start
(tests/test_packaging.py). Each page runs in a scratch folder of its own, the working directory, which holds
links to the repository's ``examples/`` and ``tests/corpus/``: pages name their inputs as seen from the
repository root and write their outputs to the scratch folder, which is deleted afterwards.
Prints one line per page and a closing "N passed, N failed" line (counting examples); exits 1 on a failure.
"""

from __future__ import annotations

import doctest
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_LANGUAGE = "pycon"
OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# An opening or closing code fence: indentation, three or more backticks or tildes, then the info string.
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def code_blocks(text: str) -> Iterator[tuple[int, str, str]]:
    """Each fenced code block of a Markdown text: (0-based line of its first content line, language, body).

    The language is the first word of the info string (MyST's ``{code-block} pycon`` gives ``pycon``, other
    directives their name in braces, e.g. ``{eval-rst}``).
    The body is dedented by the fence's indentation (blocks inside list items are indented).
    """
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = len(m["indent"]), m["fence"]
        words = m["info"].strip().split()
        if words and words[0] in ("{code-block}", "{code}", "{sourcecode}"):  # MyST: {code-block} LANG
            words = words[1:]
        language = words[0] if words else ""
        body = []
        j = i + 1
        while j < len(lines):
            close = _FENCE.match(lines[j])
            if (
                close
                and close["fence"][0] == fence[0]
                and len(close["fence"]) >= len(fence)
                and not close["info"].strip()
            ):
                break
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        yield i + 1, language, "\n".join(body) + "\n"
        i = j + 1


def page_test(path: Path) -> doctest.DocTest:
    """One doctest made of every ``pycon`` example of the page, line numbers those of the page."""
    text = path.read_text(encoding="utf-8")
    parser = doctest.DocTestParser()
    examples = []
    for first_line, language, body in code_blocks(text):
        if language != EXAMPLE_LANGUAGE:
            continue
        for example in parser.get_examples(body, str(path)):
            example.lineno += first_line
            examples.append(example)
    return doctest.DocTest(examples, {"__name__": "__main__"}, path.name, str(path), 0, text)


def _scratch_folder() -> Path:
    """A new temporary folder with ``examples`` and ``tests/corpus`` linked from the repository."""
    scratch = Path(tempfile.mkdtemp(prefix="heifkit-docs-"))
    (scratch / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    (scratch / "tests").mkdir()
    (scratch / "tests" / "corpus").symlink_to(REPO / "tests" / "corpus", target_is_directory=True)
    return scratch


def run_page(path: Path, verbose: bool = False) -> doctest.TestResults:
    """Run the page's examples in a scratch folder; doctest's report of failures goes to stdout."""
    test = page_test(path.resolve())
    runner = doctest.DocTestRunner(verbose=verbose, optionflags=OPTIONFLAGS)
    scratch = _scratch_folder()
    cwd = os.getcwd()
    os.chdir(scratch)
    try:
        runner.run(test, out=sys.stdout.write)
    finally:
        os.chdir(cwd)
        shutil.rmtree(scratch, ignore_errors=True)
    return runner.summarize(verbose=False)


def main(argv: list[str]) -> int:
    pages = [Path(arg) for arg in argv[1:] if arg != "-v"]
    if not pages:
        print(__doc__)
        return 2
    passed = failed = 0
    for page in pages:
        result = run_page(page, verbose="-v" in argv)
        print(f"{page}: {result.attempted} examples, {result.failed} failed", flush=True)
        passed += result.attempted - result.failed
        failed += result.failed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
