"""Jinja rendering shared by HTML and PDF: environment, inline assets, Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from markupsafe import Markup, escape

from auditor.errors import ReportError

from ._view import PDF_FINDINGS_PER_RULE, PDF_TABLE_LIMIT, Tuning, build_context

if TYPE_CHECKING:
    from auditor.report import ReportData

TEMPLATE = "report.html.j2"


def environment(templates_dir: Path) -> jinja2.Environment:
    if not templates_dir.is_dir():
        raise ReportError(
            f"The report templates directory {templates_dir} does not exist.",
            hint="Pass --templates DIR pointing at a copy of report_templates/, or leave it out.",
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=_printable,
    )
    env.filters["addresses"] = escape
    return env


#: Longer addresses than this may wrap in print: no column of the PDF is wider.
LONG_ADDRESS = 48
#: An e-mail address inside free text ("Security Team <security@example.com>").
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")


def addresses(value: object) -> Markup:
    """``value`` escaped, each e-mail address in it wrapped in ``<span class="addr">``.

    Print styles keep an ``.addr`` on one line, so an address is never broken inside; one longer
    than :data:`LONG_ADDRESS` characters is ``addr-long`` and may wrap rather than leave the page.
    """
    text = str(_printable(value))
    parts: list[str] = []
    last = 0
    for match in _ADDRESS.finditer(text):
        parts.append(str(escape(text[last:match.start()])))
        kind = "addr-long" if len(match.group(0)) > LONG_ADDRESS else "addr"
        parts.append(f'<span class="{kind}">{escape(match.group(0))}</span>')
        last = match.end()
    parts.append(str(escape(text[last:])))
    return Markup("".join(parts))  # noqa: S704 - every piece of text above is escape()d


def _printable(value: object) -> object:
    """NUL is not allowed anywhere in an HTML document; show it as U+FFFD like any broken text."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def asset(templates_dir: Path, name: str) -> str:
    try:
        return (templates_dir / name).read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportError(
            f"The report asset {templates_dir / name} could not be read: {exc.strerror or exc}.",
            hint="Restore it from report_templates/ in the distribution.",
        ) from exc


def script_hash(script: str) -> str:
    """The CSP source for exactly this inline script's text."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def render_document(
    data: ReportData,
    *,
    templates_dir: Path,
    mode: str,
    roster_limit: int | None = None,
    tuning: Tuning | None = None,
    findings_per_rule: int | None = PDF_FINDINGS_PER_RULE,
    table_limit: int | None = PDF_TABLE_LIMIT,
) -> str:
    """The report as an HTML string for ``mode`` "html" (interactive) or "pdf" (WeasyPrint input)."""
    env = environment(templates_dir)
    if mode == "pdf":
        # Only the PDF needs the spans (its print styles keep an address on one line); the HTML
        # keeps plain text, which reflows on any screen.
        env.filters["addresses"] = addresses
    context = build_context(
        data, mode=mode, roster_limit=roster_limit, tuning=tuning or Tuning(), findings_per_rule=findings_per_rule,
        table_limit=table_limit,
    )
    css = asset(templates_dir, "report.css")
    print_css = asset(templates_dir, "print.css")
    narrow_css = asset(templates_dir, "narrow.css") if mode == "html" else ""
    script = asset(templates_dir, "report.js") if mode == "html" else ""
    if "</script" in script.casefold():
        raise ReportError(f"{templates_dir / 'report.js'} must not contain '</script'.")
    context.update(
        css=Markup(css),  # noqa: S704 - our own stylesheet from the templates directory
        print_css=Markup(print_css),  # noqa: S704 - idem
        narrow_css=Markup(narrow_css),  # noqa: S704 - idem
        script=Markup(script),  # noqa: S704 - idem; its hash goes into the CSP below
        csp=Markup(  # noqa: S704 - built here from constants and a base64 digest
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            f"script-src '{script_hash(script)}'; base-uri 'none'; form-action 'none'"
        ),
    )
    try:
        return env.get_template(TEMPLATE).render(context)
    except jinja2.TemplateNotFound as exc:
        raise ReportError(
            f"The report template {exc.name} was not found in {templates_dir}.",
            hint="Pass --templates DIR pointing at a complete copy of report_templates/.",
        ) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise ReportError(
            f"The report template {exc.filename or exc.name}, line {exc.lineno}, is not valid: {exc.message}.",
            hint="Fix the template, or leave --templates out to use the built-in one.",
        ) from exc
    except jinja2.UndefinedError as exc:
        raise ReportError(
            f"The report template uses a value the report does not provide: {exc.message}.",
            hint="Check the variable names against report_templates/ in the distribution.",
        ) from exc
    except jinja2.TemplateError as exc:
        raise ReportError(f"The report template failed to render: {exc}.") from exc
