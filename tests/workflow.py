"""Helpers of the end-to-end tests: copy this checkout and run its command-line tools there."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def copy_checkout(dest: Path, params: dict | None = None, git: bool = False) -> Path:
    """Copy the tracked and the untracked, not ignored files of this checkout into ``dest``.

    ``params`` replaces params.yaml there; ``git`` makes the copy a repository
    with one commit (DVC needs one).
    """
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    for name in listing.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    if params is not None:
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if git:
        for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
            subprocess.run(command, cwd=dest, check=True, env=tool_env())
    return dest


def tool_env() -> dict:
    """The environment of the copied checkout's tools: this package and this interpreter's scripts."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("GIT_AUTHOR_NAME", "test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@localhost")
    env.setdefault("GIT_COMMITTER_NAME", "test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@localhost")
    return env


def run_tool(command: list[str], cwd: Path) -> str:
    """Run ``command`` in ``cwd``; fail the test with its output tail when it fails."""
    result = subprocess.run(command, cwd=cwd, env=tool_env(), capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def snakemake(work: Path, *args: str) -> str:
    """Run snakemake with one core in ``work``; put --configfile last, since it takes every later word."""
    return run_tool([str(BIN / "snakemake"), "--cores", "1", *args], work)
