"""OSCAL and OCSF views of an evaluated snapshot (issue 19): ``findings``, ``report`` and ``run`` ``--format``.

The documents come from ``auditor.standards``; this module names and writes the files. Their
libraries load only here, when one of these formats was asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.atomic import make_private_dirs, write_bytes_atomic
from auditor.errors import ReportError
from auditor.report import ReportFormat, basename_of
from auditor.report.data import account_name
from auditor.standards import StandardsFormat

if TYPE_CHECKING:
    from auditor.pipeline.findings import Evaluation

__all__ = ["refuse_existing", "split_formats", "standards_files", "standards_view", "write_standards"]


def split_formats(
    formats: Iterable[ReportFormat | StandardsFormat],
) -> tuple[list[ReportFormat], list[StandardsFormat]]:
    """The rendered report formats (HTML, PDF) and the standards formats, each once, in the order given."""
    unique = list(dict.fromkeys(formats))
    return (
        [fmt for fmt in unique if isinstance(fmt, ReportFormat)],
        [fmt for fmt in unique if isinstance(fmt, StandardsFormat)],
    )


def standards_view(evaluation: Evaluation, fmt: StandardsFormat) -> bytes:
    """``findings --format oscal`` (the Assessment Results) or ``--format ocsf`` (JSON lines)."""
    if fmt is StandardsFormat.OSCAL:
        from auditor.standards import oscal

        return oscal.assessment_results(evaluation.snapshot, evaluation.findings, reviews=evaluation.reviews)
    from auditor.standards import ocsf

    return ocsf.to_jsonl(evaluation.snapshot, evaluation.findings)


def _base(evaluation: Evaluation) -> str:
    snapshot = evaluation.snapshot
    return basename_of(account_name(snapshot), snapshot.provenance.account_id, snapshot.taken_at)


def refuse_existing(evaluation: Evaluation, formats: Sequence[StandardsFormat], output_dir: Path) -> None:
    """Raise when a file a format may write is already in ``output_dir`` (checked before anything is written)."""
    from auditor.standards.oscal import ASSESSMENT_PLAN, ASSESSMENT_RESULTS, POAM

    base = _base(evaluation)
    names = {
        StandardsFormat.OSCAL: [f"{base}.oscal-{name}" for name in (ASSESSMENT_PLAN, ASSESSMENT_RESULTS, POAM)],
        StandardsFormat.OCSF: [f"{base}.ocsf.jsonl"],
    }
    for fmt in formats:
        for name in names[fmt]:
            target = Path(output_dir) / name
            if target.exists():
                raise ReportError(
                    f"{target} already exists; it was not overwritten.",
                    hint="Pass --overwrite to replace it, or choose another directory with --output.",
                )


def standards_files(evaluation: Evaluation, formats: Sequence[StandardsFormat]) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each format beside the reports: ``<report base>.oscal-*.json``, ``<base>.ocsf.jsonl``."""
    snapshot = evaluation.snapshot
    base = _base(evaluation)
    files: list[tuple[str, bytes]] = []
    for fmt in formats:
        if fmt is StandardsFormat.OSCAL:
            from auditor.standards import oscal

            files.extend(
                oscal.documents(snapshot, evaluation.findings, reviews=evaluation.reviews, prefix=f"{base}.oscal-")
            )
        else:
            files.append((f"{base}.ocsf.jsonl", standards_view(evaluation, fmt)))
    return files


def write_standards(
    evaluation: Evaluation, *, formats: Sequence[StandardsFormat], output_dir: Path, overwrite: bool = False
) -> list[Path]:
    """Write the standards files into ``output_dir`` (which exists) atomically; every target is checked first."""
    try:
        make_private_dirs(output_dir)  # the files hold names and emails: 0700 when the tool creates it
    except OSError as exc:
        raise ReportError(
            f"The output directory {output_dir} could not be created: {exc.strerror or exc}.",
            hint="Choose another directory with --output.",
        ) from exc
    if not overwrite:
        refuse_existing(evaluation, formats, output_dir)
    targets = [(Path(output_dir) / name, data) for name, data in standards_files(evaluation, formats)]
    for target, data in targets:
        try:
            write_bytes_atomic(target, data)
        except OSError as exc:
            raise ReportError(
                f"{target} could not be written: {exc.strerror or exc}.",
                hint="Check free space and permissions, or choose another directory with --output.",
            ) from exc
    return [target for target, _data in targets]
