#!/usr/bin/env python3
"""Refuse a commit message whose subject is over 72 characters or which has no body saying why.

The commit-msg hook of .pre-commit-config.yaml runs it with the message file's path:

    python3 scripts/check_commit_msg.py .git/COMMIT_EDITMSG

A message is a subject line of at most 72 characters, a blank line, then a body (the why). Lines git
drops (comments starting with '#', everything below the scissors line of `commit -v`) are ignored.
Git's own merge subjects and fixup!/squash!/amend! commits (squashed away before they land) need no body.
Standard library only: the hook runs before anything else is checked.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MAX_SUBJECT = 72
SCISSORS = "# ------------------------ >8 ------------------------"
EXEMPT = re.compile(r"(Merge (branch|remote-tracking branch|tag|commit|pull request) |(fixup|squash|amend)! )")
EXAMPLE = (
    "Write it as:\n\n"
    "    Subject: what the commit does, 72 characters at most\n"
    "    <blank line>\n"
    "    Body: why it was needed (the problem, the choice made), wrapped at 72.\n"
)


def problems(message: str) -> list[str]:
    """What is wrong with the message, in words; empty when it is fine."""
    lines = []
    for line in message.splitlines():
        if line.startswith(SCISSORS):
            break
        if not line.startswith("#"):
            lines.append(line.rstrip())
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        return ["the message is empty"]
    subject, rest = lines[0], lines[1:]
    if EXEMPT.match(subject):
        return []
    found = []
    if len(subject) > MAX_SUBJECT:
        found.append(f"the subject has {len(subject)} characters; at most {MAX_SUBJECT} (say what, shortly)")
    if rest and rest[0]:
        found.append("the second line must be blank: it separates the subject from the body")
    elif not any(rest):
        found.append("there is no body: after a blank line, say why the change was made")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: check_commit_msg.py <commit message file>\n")
        return 2
    found = problems(Path(argv[1]).read_text(encoding="utf-8"))
    if found:
        sys.stderr.write("Commit message refused:\n" + "".join(f"  - {p}\n" for p in found) + "\n" + EXAMPLE)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
