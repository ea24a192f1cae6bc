"""The commit-msg hook (scripts/check_commit_msg.py) and the pre-commit configuration that runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_commit_msg.py"
WHY = "The body says why: the problem and the choice made."
SCISSORS = "# ------------------------ >8 ------------------------"


def _check(tmp_path: Path, message: str) -> subprocess.CompletedProcess:
    path = tmp_path / "COMMIT_EDITMSG"
    path.write_text(message, encoding="utf-8")
    return subprocess.run([sys.executable, SCRIPT, path], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    "message",
    [
        f"Add the thing\n\n{WHY}\n",
        f"{'x' * 72}\n\n{WHY}",
        f"\n\nLeading blank lines are dropped by git\n\n{WHY}\n",
        # What `git commit` leaves in the file: comments, and with -v the diff below the scissors line.
        f"Subject\n\n{WHY}\n# Please enter the commit message\n{SCISSORS}\n+diff",
        "Merge branch 'h-settings'\n",
        "fixup! Add the thing\n",
        f"Ünïcode counts characters, not bytes: {'é' * 33}\n\n{WHY}",
    ],
)
def test_a_good_message_passes(tmp_path, message):
    result = _check(tmp_path, message)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (f"{'x' * 73}\n\n{WHY}\n", "the subject has 73 characters; at most 72"),
        ("Add the thing\n", "there is no body: after a blank line, say why"),
        ("Add the thing\n\n\n", "there is no body"),
        ("Add the thing\n# only a comment below\n", "there is no body"),
        (f"Add the thing\n{WHY}\n", "the second line must be blank"),
        ("# nothing but comments\n\n", "the message is empty"),
        (f"Subject\n{SCISSORS}\n\n{WHY}", "there is no body"),
    ],
)
def test_a_bad_message_is_refused_saying_what_is_wrong(tmp_path, message, problem):
    result = _check(tmp_path, message)
    assert result.returncode == 1
    assert result.stderr.startswith("Commit message refused:\n") and problem in result.stderr, result.stderr
    assert "Subject: what the commit does, 72 characters at most" in result.stderr


def test_git_runs_it_as_the_commit_msg_hook(tmp_path):
    repo = tmp_path / "repo"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "HOME": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=30)

    repo.mkdir()
    assert git("init", "-q").returncode == 0
    hook = repo / ".git" / "hooks" / "commit-msg"
    hook.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{SCRIPT}" "$1"\n')
    hook.chmod(0o755)
    (repo / "file.txt").write_text("one\n")
    git("add", "file.txt")

    refused = git("commit", "-q", "-m", "x" * 73, "-m", WHY)
    assert refused.returncode != 0 and "the subject has 73 characters" in refused.stderr
    refused = git("commit", "-q", "-m", "Add file.txt")
    assert refused.returncode != 0 and "there is no body" in refused.stderr
    assert git("rev-parse", "--verify", "-q", "HEAD").returncode != 0  # nothing was committed

    accepted = git("commit", "-q", "-m", "Add file.txt", "-m", WHY)
    assert accepted.returncode == 0, accepted.stderr
    assert git("log", "--format=%s%n%n%b").stdout.strip() == f"Add file.txt\n\n{WHY}"


def test_pre_commit_runs_the_checks_of_make_lint_and_this_hook_from_the_venv():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    [repo] = config["repos"]
    assert repo["repo"] == "local", "local hooks only: nothing to download"
    hooks = {hook["id"]: hook for hook in repo["hooks"]}
    for hook in hooks.values():
        assert hook["language"] == "system" and hook["entry"].startswith(".venv/bin/"), hook
    assert hooks["ruff-check"]["entry"].split()[1:3] == ["check", "--force-exclude"]
    assert hooks["ruff-format"]["entry"].split()[1:3] == ["format", "--check"]
    assert hooks["lint-imports"]["entry"] == ".venv/bin/lint-imports"
    assert hooks["lint-imports"]["pass_filenames"] is False
    assert hooks["commit-msg"]["entry"] == ".venv/bin/python scripts/check_commit_msg.py"
    assert hooks["commit-msg"]["stages"] == ["commit-msg"]
    assert set(config["default_install_hook_types"]) == {"pre-commit", "commit-msg"}
    assert config["default_stages"] == ["pre-commit"]
