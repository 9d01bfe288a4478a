"""The fake CertCentral server: a dataset format, built-in keys and fault injection.

``auditor sandbox`` serves it; end-to-end tests and the demo run against it over real HTTP.
"""

from auditor.sandbox.dataset import (
    FORMAT,
    SANDBOX_KEYS,
    Dataset,
    SandboxKey,
    default_dataset,
    load_dataset,
)
from auditor.sandbox.server import Faults, RecordedRequest, SandboxServer

__all__ = [
    "FORMAT",
    "SANDBOX_KEYS",
    "Dataset",
    "Faults",
    "RecordedRequest",
    "SandboxKey",
    "SandboxServer",
    "default_dataset",
    "load_dataset",
]
