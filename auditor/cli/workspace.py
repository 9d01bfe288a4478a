"""The :class:`~auditor.pipeline.Workspace` a command runs in, from the environment and the global flags."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs

from auditor.cli.env import EnvSecrets
from auditor.errors import ConfigurationError
from auditor.pipeline import Workspace

APP_NAME = "certcentral-auditor"


def env_secrets(args: argparse.Namespace) -> EnvSecrets:
    """The secrets :func:`auditor.cli.main` took from the environment (none when run otherwise)."""
    secrets = getattr(args, "env_secrets", None)
    return secrets if isinstance(secrets, EnvSecrets) else EnvSecrets()


def _path_from_env(value: str, cwd: Path) -> Path:
    """``~`` expanded; a relative path is taken from the working directory, as a shell user means it."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else cwd / path


def workspace_from_env(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None, *, cwd: Path | None = None
) -> Workspace:
    env = dict(os.environ if environ is None else environ)
    here = cwd or Path.cwd()
    home = env.get("AUDITOR_HOME")
    data_dir = _path_from_env(home, here) if home else Path(platformdirs.user_data_dir(APP_NAME))
    key_file_env = env.get("AUDITOR_MASTER_KEY_FILE")
    if key_file_env:
        key_file = _path_from_env(key_file_env, here)
    else:
        key_file = Path(platformdirs.user_config_dir(APP_NAME)) / "master.key"
    return Workspace(
        data_dir=data_dir,
        master_key_file=key_file,
        master_key_env=env_secrets(args).master_key or env.get("AUDITOR_MASTER_KEY") or None,
        config_path=args.config,
        config_search_dirs=(here,),
        client_options=client_options(args),
        operator=getattr(args, "operator", None),
    )


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """The global ``--retries``/``--timeout``/``--deadline``/``--max-users``, checked, as client options."""
    if not 1 <= args.retries <= 20:
        raise ConfigurationError(f"--retries must be between 1 and 20, got {args.retries}.")
    if not 0 < args.timeout <= 600:
        raise ConfigurationError(f"--timeout must be between 0 and 600 seconds, got {args.timeout}.")
    if not 0 < args.deadline <= 86400:
        raise ConfigurationError(f"--deadline must be between 0 and 86400 seconds, got {args.deadline}.")
    if not 1 <= args.max_users <= 100_000_000:
        raise ConfigurationError(f"--max-users must be between 1 and 100000000, got {args.max_users}.")
    options: dict[str, Any] = {
        "retry_attempts": args.retries,
        "timeout": args.timeout,
        "deadline": args.deadline,
        "max_users": args.max_users,
    }
    if getattr(args, "report_library_url", None):
        options["report_library_url"] = args.report_library_url
    return options
