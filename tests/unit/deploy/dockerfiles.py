"""Just enough of Dockerfile and .dockerignore semantics to check ours statically.

No Docker engine runs here, so the image build is checked by reading the
files: instructions with their stage, ARG defaults substituted into FROM,
and the build context that .dockerignore leaves (last matching pattern
wins, ``!`` re-includes, a pattern matching a folder covers its contents).
"""

from __future__ import annotations

import pathlib
import re
import shlex
from dataclasses import dataclass

IgnoreRules = list[tuple[bool, re.Pattern[str]]]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int  # -1 for ARGs before the first FROM


def parse_dockerfile(text: str) -> list[Instruction]:
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)

    instructions: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage))
    return instructions


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    found: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ARG" and ins.stage == -1:
            name, _, default = ins.args.partition("=")
            found[name] = default
    return found


def substitute(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), value)


def copy_sources(ins: Instruction) -> list[str]:
    """Source paths of a COPY from the build context (not ``--from`` copies)."""
    words = shlex.split(ins.args)
    if any(word.startswith("--from=") for word in words):
        return []
    paths = [word for word in words if not word.startswith("--")]
    return paths[:-1]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            parts.append(pattern[i : end + 1])
            i = end + 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts) + r"\Z")


def ignore_rules(text: str) -> IgnoreRules:
    """(excludes, regex) per line of a .dockerignore, in file order."""
    rules: IgnoreRules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((excludes, _pattern_regex(pattern)))
    return rules


def is_in_context(path: str, rules: IgnoreRules) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for excludes, regex in rules:
        if any(regex.match(prefix) for prefix in prefixes):
            included = not excludes
    return included


def context_files(repo: pathlib.Path, rules: IgnoreRules) -> set[str]:
    skip = {".git", ".venv"}
    files = set()
    for path in repo.rglob("*"):
        rel = path.relative_to(repo)
        if rel.parts[0] in skip or not path.is_file():
            continue
        if is_in_context(rel.as_posix(), rules):
            files.add(rel.as_posix())
    return files
