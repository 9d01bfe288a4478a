"""Fill a review worksheet in LibreOffice Calc itself, as a reviewer would, and save it as XLSX.

Run with the *system* Python, which has LibreOffice's ``uno`` bridge (Debian: python3-uno), not the
project's virtualenv::

    /usr/bin/python3 tests/libreoffice_fill.py --soffice /usr/bin/soffice --profile DIR \
        IN.xlsx OUT.xlsx FILLS.json

``FILLS.json`` maps an email to the cells to set on that user's row, e.g.
``{"dana@x": {"decision": "revoke", "justification": "left"}}``. A reviewer column's value is
picked from that cell's data-validation list when it has one (``decision`` must be one of the
list's entries; ``new_role`` may be free text, as the drop-down allows). Filling a data column
(an edit the import must catch) first unprotects the sheet, as a reviewer would have to.

The script starts its own headless soffice on a free loopback port with a throw-away profile and
always terminates it; every wait is bounded. Exit 0 on success, 2 on bad input, 3 when
LibreOffice could not be reached or failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import uno  # type: ignore[import-not-found]  # LibreOffice's bridge (python3-uno)
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]
from com.sun.star.connection import NoConnectException  # type: ignore[import-not-found]

REVIEW_SHEET = "Review"
REVIEWER_COLUMNS = ("decision", "new_role", "justification", "ticket")
CONNECT_SECONDS = 90.0
EXIT_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _props(**values: Any) -> tuple[Any, ...]:
    result = []
    for name, value in values.items():
        prop = PropertyValue()
        prop.Name, prop.Value = name, value
        result.append(prop)
    return tuple(result)


def _connect(port: int, process: subprocess.Popen[bytes]) -> Any:
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    url = f"uno:socket,host=127.0.0.1,port={port};urp;StarOffice.ComponentContext"
    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            return resolver.resolve(url)
        except NoConnectException:
            if process.poll() is not None:
                raise RuntimeError(f"soffice exited with {process.returncode} before accepting") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"soffice did not accept on port {port} within {CONNECT_SECONDS:.0f}s") from None
            time.sleep(0.5)


def list_entries(cell: Any) -> list[str] | None:
    """The entries of the cell's drop-down (a data-validation list), or None when it has none."""
    from com.sun.star.sheet.ValidationType import LIST  # type: ignore[import-not-found]

    validation = cell.getPropertyValue("Validation")
    if validation.getPropertyValue("Type") != LIST:
        return None
    formula = validation.getFormula1()  # e.g. "keep";"revoke";"modify" (or a comma list)
    separator = ";" if ";" in formula else ","
    return [part.strip().strip('"') for part in formula.split(separator)]


def _choose(cell: Any, column: str, wanted: str, where: str) -> str:
    """The drop-down entry a reviewer would pick for ``wanted``; free text only where the list allows."""
    entries = list_entries(cell)
    if entries is None:
        if column == "decision":
            raise ValueError(f"{where}: the decision cell has no drop-down")
        return wanted
    for entry in entries:
        if entry.casefold() == wanted.casefold():
            return entry
    if column == "decision":
        raise ValueError(f"{where}: {wanted!r} is not in the decision drop-down {entries}")
    return wanted  # new_role: a custom role the list does not name


def fill(document: Any, fills: dict[str, dict[str, str]]) -> list[str]:
    """Set the cells; return what was done, one line per cell."""
    sheet = document.getSheets().getByName(REVIEW_SHEET)
    cursor = sheet.createCursor()
    cursor.gotoEndOfUsedArea(False)
    last_row = cursor.getRangeAddress().EndRow
    last_column = cursor.getRangeAddress().EndColumn
    header = {sheet.getCellByPosition(c, 0).getString(): c for c in range(last_column + 1)}
    done: list[str] = []
    pending = dict(fills)
    for row in range(1, last_row + 1):
        email = sheet.getCellByPosition(header["email"], row).getString()
        cells = pending.pop(email, None)
        if not cells:
            continue
        for column, value in cells.items():
            where = f"row {row + 1}, column {column}"
            cell = sheet.getCellByPosition(header[column], row)
            if column in REVIEWER_COLUMNS:
                text = _choose(cell, column, value, where) if column in {"decision", "new_role"} else value
            else:
                if sheet.isProtected():
                    sheet.unprotect("")
                text = value
            cell.setString(text)
            done.append(f"{where}: {text}")
    if pending:
        raise ValueError(f"no row for {sorted(pending)}")
    return done


def run(soffice: str, profile: Path, source: Path, target: Path, fills: dict[str, dict[str, str]]) -> list[str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            soffice, "--headless", "--invisible", "--norestore", "--nologo", "--nodefault",
            f"--accept=socket,host=127.0.0.1,port={port};urp;",
            f"-env:UserInstallation={profile.resolve().as_uri()}",
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # soffice forks soffice.bin: end the whole group
    )
    desktop = None
    try:
        context = _connect(port, process)
        desktop = context.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", context)
        document = desktop.loadComponentFromURL(source.resolve().as_uri(), "_blank", 0, _props(Hidden=True))
        if document is None:
            raise RuntimeError(f"LibreOffice could not open {source}")
        try:
            done = fill(document, fills)
            document.storeToURL(target.resolve().as_uri(), _props(FilterName="Calc MS Excel 2007 XML"))
        finally:
            document.close(True)
        return done
    finally:
        if desktop is not None:
            with contextlib.suppress(Exception):  # the bridge drops as soffice exits
                desktop.terminate()
        try:
            process.wait(timeout=EXIT_SECONDS)  # the launcher exits once soffice.bin has
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group this script started, nothing else
            process.wait(timeout=EXIT_SECONDS)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soffice", default="soffice")
    parser.add_argument("--profile", type=Path, required=True, help="a fresh directory for the LibreOffice profile")
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("fills", type=Path)
    args = parser.parse_args(argv)
    try:
        fills = json.loads(args.fills.read_text(encoding="utf-8"))
        for line in run(args.soffice, args.profile, args.source, args.target, fills):
            print(line)
    except (ValueError, KeyError) as exc:
        print(f"libreoffice_fill: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # any LibreOffice failure, reported as one line
        print(f"libreoffice_fill: LibreOffice failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
