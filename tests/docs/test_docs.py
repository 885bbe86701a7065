"""Checks of the Markdown documentation (README.md and docs/*.md).

* Every fenced shell block (```bash, ```sh, ```shell, ```console) either runs here, in the
  repository root with this interpreter's environment first on PATH, or is marked on the
  line right before its opening fence with an HTML comment giving the reason::

      <!-- ci: skip (needs CIFAR-10 and a GPU) -->

  The reason in parentheses is required. ```console blocks run their ``$ `` lines.
  Unmarked blocks must be cheap (``semsim --help``, ``semsim validate``, a tiny
  ``semsim ber``): each has :data:`BLOCK_TIMEOUT_S` seconds.
* Relative links and images resolve to existing files, and ``#anchors`` into Markdown
  files exist (headings or ``<a id="...">``).
* ``docs/scenarios.md`` equals the output of ``docs/gen_scenarios_md.py``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
#: Seconds one unmarked shell block may take.
BLOCK_TIMEOUT_S = 180
SKIP_MARK = re.compile(r"^<!--\s*ci:\s*skip\s*\((?P<reason>[^)]*)\)\s*-->\s*$")
ANY_MARK = re.compile(r"^<!--\s*ci:")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
ANCHOR_TAG = re.compile(r"<a\s+(?:id|name)=\"(?P<id>[^\"]+)\"")


@dataclasses.dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    skip_reason: str | None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """All fenced code blocks of a Markdown file, with the ci marker of each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, lang = match["fence"], (match["info"].strip().split() or [""])[0].lower()
        start, body = i, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        previous = lines[start - 1].strip() if start > 0 else ""
        skip = SKIP_MARK.match(previous)
        if ANY_MARK.match(previous) and not (skip and skip["reason"].strip()):
            raise AssertionError(f"{path}:{start}: malformed ci marker {previous!r}; "
                                 "write <!-- ci: skip (REASON) --> with a reason")
        blocks.append(Block(path, start + 1, lang, "\n".join(body),
                            skip["reason"].strip() if skip else None))
        i += 1
    return blocks


def shell_blocks() -> list[Block]:
    return [b for path in DOCS for b in fenced_blocks(path) if b.lang in SHELL_LANGS]


def script_of(block: Block) -> str:
    if block.lang != "console":
        return block.text
    commands = [line.strip()[2:] for line in block.text.splitlines()
                if line.strip().startswith("$ ")]
    assert commands, f"{block.id}: a console block needs '$ ' command lines"
    return "\n".join(commands)


BLOCKS = shell_blocks()


def test_shell_blocks_found():
    # the README's set-up commands at least; guards against the parser finding nothing
    readme = [b for b in BLOCKS if b.path.name == "README.md"]
    assert len(readme) >= 2, [b.id for b in BLOCKS]
    for block in readme:
        if "pip install" in block.text:
            assert block.skip_reason, f"{block.id}: pip commands must carry a ci: skip marker"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.skip_reason is None],
                         ids=lambda b: b.id)
def test_shell_block_runs(block, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script_of(block)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
    assert proc.returncode == 0, (
        f"{block.id}: shell block failed (exit {proc.returncode}); mark it with "
        f"<!-- ci: skip (reason) --> if it cannot run in CI\n--- block ---\n{block.text}\n"
        f"--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}")


def heading_anchors(path: Path) -> set[str]:
    """GitHub-style heading slugs and explicit ``<a id>`` anchors of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    anchors = {m["id"] for m in ANCHOR_TAG.finditer(text)}
    in_code = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
            anchors.add(slug)
    return anchors


def links(path: Path) -> list[tuple[int, str]]:
    out, in_code = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            continue
        line = re.sub(r"`[^`]*`", "", line)  # inline code is not a link
        out += [(number, m["target"]) for m in LINK.finditer(line)]
    return out


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(path):
    broken = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{path.name}:{number}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in heading_anchors(dest):
            broken.append(f"{path.name}:{number}: {target} (no anchor #{anchor})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_scenarios_md_is_generated():
    spec = importlib.util.spec_from_file_location("gen_scenarios_md",
                                                  ROOT / "docs" / "gen_scenarios_md.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    assert committed == module.render(), \
        f"docs/scenarios.md is stale: run `{module.COMMAND}` and commit the result"
