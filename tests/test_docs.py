"""The examples in README.md and docs/ run, so they cannot rot."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import postgres_url

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
CONSOLE_BLOCK = re.compile(r"```console\n(.*?)```", re.DOTALL)


def python_blocks(path: Path) -> list[str]:
    return PYTHON_BLOCK.findall(path.read_text(encoding="utf-8"))


def console_commands(path: Path) -> list[str]:
    return [
        line[2:]
        for block in CONSOLE_BLOCK.findall(path.read_text(encoding="utf-8"))
        for line in block.splitlines()
        if line.startswith("$ ")
    ]


@pytest.mark.parametrize(
    "path", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name
)
def test_python_examples_run(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    if "MNEMOLOG_URL" in path.read_text(encoding="utf-8"):
        monkeypatch.setenv("MNEMOLOG_URL", postgres_url())
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    for number, block in enumerate(python_blocks(path), start=1):
        code = compile(block, f"{path.name}, python block {number}", "exec")
        exec(code, namespace)


@pytest.mark.parametrize(
    "path", [p for p in DOCS if console_commands(p)], ids=lambda p: p.name
)
def test_console_examples_run(path: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if "MNEMOLOG_URL" in path.read_text(encoding="utf-8"):
        env["MNEMOLOG_URL"] = postgres_url()
    for command in console_commands(path):
        words = [
            word.replace("$MNEMOLOG_URL", env.get("MNEMOLOG_URL", ""))
            for word in shlex.split(command)
        ]
        assert words[0] == "mnemolog", command
        done = subprocess.run(
            [sys.executable, "-m", "mnemolog", *words[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert done.stdout.strip(), f"{command} printed nothing"


def test_every_doc_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, page.name
