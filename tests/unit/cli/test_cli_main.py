"""``auditor.cli.main`` in-process: the data directory from the environment, exit codes, closed sets.

Every closed set the parser offers is walked member by member against the model's enum or
catalogue it comes from, so a new severity, format, profile or exit code cannot be left out.
"""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import pytest
from support import REPO

from auditor.cli import build_parser, main
from auditor.cli.parser import OutputFormat
from auditor.errors import ExitCode
from auditor.identity import DEFAULT_PRESET, PRESETS
from auditor.models import Severity
from auditor.profiles import PROFILE_NAMES
from auditor.report import ReportFormat
from auditor.review import SCOPES

README = REPO / "README.md"


def run(argv: list[str], *, cwd: Path, environ: dict[str, str], stdin: io.StringIO | None = None) -> tuple[int, str]:
    err = io.StringIO()
    code = main(argv, stdout=io.StringIO(), stderr=err, stdin=stdin or io.StringIO(), environ=environ, cwd=cwd)
    return code, err.getvalue()


def test_a_relative_auditor_home_is_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `AUDITOR_HOME=data auditor snapshots` (the README's CI example uses a relative home) was exit 70.
    monkeypatch.chdir(tmp_path)
    environ = {"AUDITOR_HOME": "data", "AUDITOR_MASTER_KEY_FILE": "keys/master.key"}
    code, err = run(["snapshots"], cwd=tmp_path, environ=environ)
    assert code == ExitCode.OK, err
    assert "No snapshots yet" in err
    assert (tmp_path / "data").is_dir()
    assert (tmp_path / "keys").is_dir()


class _Raising(io.StringIO):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def readline(self, size: int | None = -1) -> str:
        raise self.error


@pytest.mark.parametrize(
    ("error", "code"),
    [(KeyboardInterrupt(), ExitCode.INTERRUPTED), (RuntimeError("a bug"), ExitCode.INTERNAL_ERROR)],
)
def test_interrupt_and_internal_error_exit_with_their_codes(
    tmp_path: Path, error: BaseException, code: ExitCode
) -> None:
    environ = {"AUDITOR_HOME": str(tmp_path / "home"), "AUDITOR_MASTER_KEY_FILE": str(tmp_path / "master.key")}
    argv = ["connect", "--base-url", "http://127.0.0.1:9/services/v2", "--key-stdin"]
    got, err = run(argv, cwd=tmp_path, environ=environ, stdin=_Raising(error))
    assert got == code
    assert int(code) in {130, 70}
    assert ("Interrupted." if code is ExitCode.INTERRUPTED else "Internal error (RuntimeError)") in err


def test_help_and_readme_list_every_exit_code() -> None:
    help_text = build_parser().format_help()
    readme = README.read_text(encoding="utf-8")
    table = readme[readme.index("## Exit codes") :]
    table = table[: table.index("\n## ")]
    readme_codes = {int(code) for code in re.findall(r"^\| (\d+) \|", table, flags=re.MULTILINE)}
    assert readme_codes == {int(code) for code in ExitCode}
    for code in ExitCode:
        assert re.search(rf"^  {int(code)} +\S", help_text, flags=re.MULTILINE), code


# --- closed sets: every member of the enum or catalogue, and nothing else ------------------------


def _subcommand(*names: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in names:
        (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def _choices(parser: argparse.ArgumentParser, flag: str) -> tuple[str, ...]:
    choices = parser._option_string_actions[flag].choices
    assert choices is not None
    return tuple(choices)


@pytest.mark.parametrize("command", [("findings",), ("report",), ("run",)])
def test_fail_on_offers_every_severity(command: tuple[str, ...]) -> None:
    assert _choices(_subcommand(*command), "--fail-on") == tuple(s.value for s in Severity)
    for severity in Severity:
        args = build_parser().parse_args([*command, "--fail-on", severity.value])
        assert Severity(args.fail_on) is severity


@pytest.mark.parametrize(
    ("command", "formats"),
    [
        (("history",), {OutputFormat.TEXT, OutputFormat.JSON}),
        (("diff",), {OutputFormat.TEXT, OutputFormat.JSON, OutputFormat.CSV}),
        (("findings",), {OutputFormat.TEXT, OutputFormat.JSON, OutputFormat.OSCAL, OutputFormat.OCSF}),
        (("review", "status"), {OutputFormat.TEXT, OutputFormat.JSON, OutputFormat.CSV}),
    ],
)
def test_format_choices_are_output_format_members(command: tuple[str, ...], formats: set[OutputFormat]) -> None:
    assert {OutputFormat(value) for value in _choices(_subcommand(*command), "--format")} == formats


def test_every_output_format_is_offered_somewhere() -> None:
    offered = {
        OutputFormat(value)
        for command in (("history",), ("diff",), ("findings",), ("review", "status"))
        for value in _choices(_subcommand(*command), "--format")
    }
    assert offered == set(OutputFormat)


@pytest.mark.parametrize("command", ["findings", "report", "export", "run"])
def test_framework_help_names_every_profile(command: str) -> None:
    help_text = " ".join(_subcommand(command).format_help().split())
    for name in PROFILE_NAMES:
        assert name in help_text, name


@pytest.mark.parametrize("command", ["report", "run"])
def test_report_format_default_and_help_are_every_report_format(command: str) -> None:
    sub = _subcommand(command)
    default = sub._option_string_actions["--format"].default
    assert [ReportFormat(name) for name in default.split(",")] == list(ReportFormat)


def test_identity_preset_help_names_every_preset() -> None:
    help_text = " ".join(_subcommand("findings").format_help().split())
    for name in PRESETS:
        assert name in help_text, name
    assert f"{DEFAULT_PRESET} (default)" in help_text


def test_review_scope_choices_are_the_review_scopes() -> None:
    assert _choices(_subcommand("review", "open"), "--scope") == SCOPES
