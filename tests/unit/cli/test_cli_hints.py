"""Every command and flag the package tells a person to use exists in the parser (issue 13).

The texts are read from the source, not from a list: every string passed to an ``AuditorError``
subclass or as ``hint=``, every ``*_HINT`` constant, and every other string literal (docstrings
too) that names ``auditor <command>``. A command named must exist, with its action when it has
actions (``auditor keys rotate``), a flag after it must belong to that command (or be global),
a value-less word after it must be one of its positionals, and a flag named on its own must exist
somewhere.
"""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditor import errors
from auditor.cli import build_parser

PACKAGE = Path(errors.__file__).parent

ERROR_NAMES = frozenset(
    name
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, errors.AuditorError)
)


@dataclass(frozen=True)
class Text:
    where: str
    text: str
    is_hint: bool  #: an error's message or hint (flags named anywhere in it are checked)


def _literal(node: ast.expr) -> str | None:
    """A string constant or f-string, placeholders as ``X``; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "X" for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal(node.left), _literal(node.right)
        if left is not None and right is not None:
            return left + right
    return None


def _strings(node: ast.AST) -> Iterator[tuple[ast.expr, str]]:
    """The outermost string expressions inside ``node`` (an f-string once, not also its parts)."""
    if isinstance(node, ast.expr) and (text := _literal(node)) is not None:
        yield node, text
        return
    for child in ast.iter_child_nodes(node):
        yield from _strings(child)


def _callee(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def package_texts() -> Iterator[Text]:
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        hint_nodes: set[int] = set()
        for node in ast.walk(tree):
            parts: list[ast.expr] = []
            if isinstance(node, ast.Call):
                if _callee(node) in ERROR_NAMES:
                    parts.extend(node.args)
                    parts.extend(keyword.value for keyword in node.keywords)
                else:
                    parts.extend(keyword.value for keyword in node.keywords if keyword.arg == "hint")
            elif isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and "hint" in target.id.casefold() for target in node.targets
            ):
                parts.append(node.value)
            for part in parts:
                for sub, text in _strings(part):
                    hint_nodes.update(id(inner) for inner in ast.walk(sub))
                    yield Text(f"{path.relative_to(PACKAGE.parent)}:{sub.lineno}", text, True)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in hint_nodes:
                yield Text(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}", node.value, False)


# --- the parser's commands, actions, flags and positionals ----------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> dict[str, bool]:
    """Each option string and whether it takes a value."""
    return {flag: action.nargs != 0 for flag, action in parser._option_string_actions.items()}


def _positionals(parser: argparse.ArgumentParser) -> int:
    return sum(
        1 for action in parser._actions
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction)
    )


PARSER = build_parser()
GLOBAL_FLAGS = _flags(PARSER)
COMMANDS = _subparsers(PARSER)
EVERY_FLAG = set(GLOBAL_FLAGS).union(
    *(_flags(sub) for sub in COMMANDS.values()),
    *(_flags(action) for sub in COMMANDS.values() for action in _subparsers(sub).values()),
)

#: Where a command reference ends: a closing quote or backtick, punctuation, a shell operator.
_SPAN_END = re.compile(r"`|'|\"|;|,|\(|\)|\n|\. |\.$|:\s| <<<| \|| or | and | then | to ")
_COMMAND = re.compile(r"(`{1,2}|'|\")?\bauditor((?:\s+-[\w-]+(?:\s+[A-Z0-9_]+)?)*)\s+([a-z][a-z-]*)")
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def problems_in(text: str, *, is_hint: bool) -> list[str]:
    found: list[str] = []
    in_spans: set[int] = set()
    for match in _COMMAND.finditer(text):
        quoted, global_words, name = match.group(1), match.group(2).split(), match.group(3)
        if name not in COMMANDS:
            if quoted:
                found.append(f"`auditor {name}`: no such command")
            continue  # prose ("hand this to your auditor out of band")
        found.extend(f"`auditor` has no {word}" for word in global_words
                     if word.startswith("-") and word not in GLOBAL_FLAGS)
        in_spans.update(m.start() + match.start(2) for m in _FLAG.finditer(match.group(2)))
        rest = text[match.end() :]
        end = _SPAN_END.search(rest)
        span = rest[: end.start()] if end else rest
        in_spans.update(m.start() + match.end() for m in _FLAG.finditer(span))
        found.extend(_check_command(name, span.split()))
    if is_hint:
        for flag in _FLAG.finditer(text):
            if flag.start() not in in_spans and flag.group() not in EVERY_FLAG:
                found.append(f"{flag.group()}: no command takes this flag")
    return found


def _check_command(name: str, words: list[str]) -> list[str]:
    sub = COMMANDS[name]
    actions = _subparsers(sub)
    if actions:
        if not words or words[0] not in actions:
            return [f"`auditor {name}` needs one of {', '.join(actions)}, got {' '.join(words[:1]) or 'none'}"]
        name, sub, words = f"{name} {words[0]}", actions[words[0]], words[1:]
    flags = {**GLOBAL_FLAGS, **_flags(sub)}
    positionals = _positionals(sub)
    found = []
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word.startswith("--"):
            flag = word.split("=", 1)[0].rstrip(".")
            if flag not in flags:
                found.append(f"`auditor {name}` has no {flag}")
                skip = "=" not in word  # its value, if it was given one
            else:
                skip = flags[flag] and "=" not in word
        elif positionals:
            positionals -= 1
        else:
            found.append(f"`auditor {name}` takes no argument {word!r}")
    return found


def test_every_command_and_flag_named_in_a_hint_exists() -> None:
    problems = [
        f"{item.where}: {problem}"
        for item in package_texts()
        for problem in problems_in(item.text, is_hint=item.is_hint)
    ]
    assert problems == []


def test_the_walk_finds_the_hints_it_must_check() -> None:
    # The walk itself: a hint passed as hint=, a *_HINT constant and a docstring are all read.
    texts = list(package_texts())
    assert len([t for t in texts if t.is_hint]) > 150
    assert any("Run `auditor pull`" in t.text and t.is_hint for t in texts)
    assert any(t.where.startswith("auditor/client") and t.is_hint and "API Keys" in t.text for t in texts)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Run `auditor rules` to list them.", "`auditor rules`: no such command"),
        ("List the keys with `auditor keys`.", "`auditor keys` needs one of public, rotate, got none"),
        ("Run `auditor connect NAME`.", "`auditor connect` takes no argument 'NAME'"),
        ("Give a later --expires date.", "--expires: no command takes this flag"),
        ("Run `auditor pull --data-dir DIR`.", "`auditor pull` has no --data-dir"),
        ("Run `auditor snapshots --details`.", "`auditor snapshots` has no --details"),
        ("Run `auditor --limit 5 pull`.", "`auditor` has no --limit"),
        ("Run `auditor attest sso --by X`.", "`auditor attest` needs one of mfa, review, got sso"),
    ],
)
def test_a_hint_naming_what_does_not_exist_is_caught(text: str, problem: str) -> None:
    assert problems_in(text, is_hint=True) == [problem]


@pytest.mark.parametrize(
    "text",
    [
        "Run `auditor pull --connection prod --details`.",
        "Then: auditor review import FILE --by \"NAME <EMAIL>\"",
        "Verify with `auditor verify FILE.zip --manifest-sha256 HEX --previous OLD.zip`.",
        "Hand this to your auditor out of band.",
        "Pass --identity FILE, or run `auditor attest mfa --by X --statement Y`.",
        "Run `auditor keys rotate`.",
        "Allow more time with `auditor --deadline SECONDS pull`.",
        "Report it with the output of `auditor -v pull`.",
    ],
)
def test_a_hint_naming_what_exists_passes(text: str) -> None:
    assert problems_in(text, is_hint=True) == []
