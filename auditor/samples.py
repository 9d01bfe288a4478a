"""Finds the bundled sample account, in a source checkout and in an installed wheel alike."""

from __future__ import annotations

from pathlib import Path

from auditor.errors import ConfigurationError

SAMPLE_ACCOUNT = "example-corp"


def samples_dir() -> Path:
    """``samples/`` at the repository top (editable install) or ``auditor/samples`` (wheel)."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "samples", package.parent / "samples"):
        if (candidate / SAMPLE_ACCOUNT).is_dir():
            return candidate
    raise ConfigurationError(
        "The bundled sample account was not found.",
        hint="Reinstall certcentral-auditor; the samples/ folder ships with it.",
    )


def sample_account_dir() -> Path:
    return samples_dir() / SAMPLE_ACCOUNT


def sample_states() -> list[Path]:
    """The account's monthly states, oldest first (file names start with the ISO date)."""
    states = sorted((sample_account_dir() / "states").glob("*.json"))
    if not states:
        raise ConfigurationError(f"No sample states in {sample_account_dir() / 'states'}.")
    return states


def latest_sample_state() -> Path:
    return sample_states()[-1]


#: The second sample account (issue 21): the demo's fleet summary shows both.
SUBSIDIARY_ACCOUNT = "example-subsidiary"


def subsidiary_states() -> list[Path]:
    """Example Subsidiary's states, oldest first."""
    states = sorted((samples_dir() / SUBSIDIARY_ACCOUNT / "states").glob("*.json"))
    if not states:
        raise ConfigurationError(f"No sample states in {samples_dir() / SUBSIDIARY_ACCOUNT / 'states'}.")
    return states
