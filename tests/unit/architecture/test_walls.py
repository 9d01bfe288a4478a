"""The import walls of ARCHITECTURE.md, read from every module's source (ast), not from a list.

Every ``import`` counts, at module level or inside a function or an ``if TYPE_CHECKING:`` block:
a wall is a statement about the design, not only about what runs. A module turned into a package
(``client.py`` -> ``client/``) is covered by the same names (``auditor.client`` and below).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import REPO

PACKAGE = REPO / "auditor"

#: Names that turn a private key into bytes (or back), or seal with AES-GCM or derive with HKDF.
KEY_MATERIAL_NAMES = frozenset(
    {
        "AESGCM",
        "HKDF",
        "PrivateFormat",
        "NoEncryption",
        "BestAvailableEncryption",
        "load_pem_private_key",
        "load_der_private_key",
        "load_ssh_private_key",
        "private_bytes",
        "from_private_bytes",
    }
)
KEY_MATERIAL_MODULES = ("cryptography.hazmat.primitives.ciphers", "cryptography.hazmat.primitives.kdf")


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    #: Every module it imports, dotted, with ``from a import b`` giving both ``a`` and ``a.b``.
    imports: frozenset[str]
    #: Every name and attribute it mentions (``serialization.PrivateFormat`` gives ``PrivateFormat``).
    names: frozenset[str]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_module(path: Path) -> Module:
    name = module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imports: set[str] = set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            imports.add(origin)
            for alias in node.names:
                imports.add(f"{origin}.{alias.name}")
                names.add(alias.name)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Name):
            names.add(node.id)
    return Module(name=name, path=path, imports=frozenset(imports), names=frozenset(names))


MODULES = tuple(read_module(path) for path in sorted(PACKAGE.rglob("*.py")))


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def importers(target: str, *, among: tuple[Module, ...] = MODULES) -> list[str]:
    return [m.name for m in among if any(within(name, target) for name in m.imports)]


def modules_in(*packages: str) -> tuple[Module, ...]:
    found = tuple(m for m in MODULES if any(within(m.name, p) for p in packages))
    assert found, f"no module found in {packages}: the wall would hold vacuously"
    return found


def test_every_module_is_read() -> None:
    names = {m.name for m in MODULES}
    assert {"auditor.models", "auditor.credentials", "auditor.rules", "auditor.evidence.keys"} <= names
    assert any(within(n, "auditor.cli") for n in names) and any(within(n, "auditor.client") for n in names)


def test_the_core_never_imports_the_cli() -> None:
    core = tuple(m for m in MODULES if not within(m.name, "auditor.cli") and m.name != "auditor.__main__")
    assert importers("auditor.cli", among=core) == []


def test_models_import_no_third_party_library() -> None:
    (models,) = modules_in("auditor.models")
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    assert sorted(n for n in models.imports if n.split(".")[0] not in allowed) == []


def test_rules_report_and_evidence_never_import_the_client() -> None:
    assert importers("auditor.client", among=modules_in("auditor.rules", "auditor.report", "auditor.evidence")) == []


def test_the_sandbox_never_imports_the_client() -> None:
    assert importers("auditor.client", among=modules_in("auditor.sandbox")) == []


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_only_credentials_seals_or_serialises_key_material(module: Module) -> None:
    if module.name == "auditor.credentials":
        assert {"AESGCM", "HKDF", "PrivateFormat", "from_private_bytes"} <= module.names  # the check sees them
        return
    assert sorted(module.names & KEY_MATERIAL_NAMES) == []
    assert [n for n in module.imports if any(within(n, p) for p in KEY_MATERIAL_MODULES)] == []


def test_the_standards_views_import_neither_the_client_nor_the_store() -> None:
    """Issue 19: ``auditor.standards`` turns models and rules output into OSCAL/OCSF, nothing more."""
    standards = modules_in("auditor.standards")
    assert importers("auditor.client", among=standards) == []
    assert importers("auditor.store", among=standards) == []


def test_only_the_standards_views_import_trestle_and_py_ocsf_models() -> None:
    for library in ("trestle", "py_ocsf_models"):
        assert [name for name in importers(library) if not within(name, "auditor.standards")] == []
