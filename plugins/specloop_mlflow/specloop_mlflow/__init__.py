"""The MLflow bridge: specloop's runs, registered versions and alias moves, mirrored to an
MLflow tracking server so a team gets MLflow's UI and API over them.

specloop stays the record. The bridge only observes it, through the public lifecycle hooks
(``specloop_after_run``, ``specloop_after_register``, ``specloop_after_alias_change``), after
each change committed; nothing is read back from MLflow, and nothing decided there (an alias
set in MLflow's UI) moves anything in specloop.

This module is what the ``specloop.plugins`` entry point imports for every command, so it
declares the settings and the hooks only; the MLflow client is imported by
:mod:`specloop_mlflow._bridge`, and only when ``plugins.mlflow.tracking_uri`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass

from specloop import Interval, Options, hookimpl, param

__version__ = "0.1.0"


@dataclass
class MlflowSettings:
    """``plugins.mlflow``: where to mirror, and what to do when MLflow is unreachable.

    Credentials are never settings: the MLflow client reads ``MLFLOW_TRACKING_TOKEN``,
    ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` and the TLS variables from the
    environment.
    """

    tracking_uri: str | None = param(
        None, help="the MLflow tracking server (http(s)://host:port); absent: the bridge is off")
    registry_uri: str | None = param(
        None, help="the model registry's server, if not the tracking server")
    experiment: str | None = param(None, help="the MLflow experiment (default: project.name)")
    registered_model: str | None = param(
        None, help="the MLflow registered model (default: the specloop model name)")
    timeout: int = param(10, check=Interval(int, 1, 300),
                         help="seconds per HTTP request to MLflow (connect and read)")
    retries: int = param(2, check=Interval(int, 0, 10),
                         help="retries of a failed request, with exponential backoff")
    fail: str = param("warn", check=Options("warn", "error"),
                      help="MLflow unreachable: warn (one line, exit code unchanged) or error "
                           "(exit 1; the specloop record is committed either way)")
    log_model: bool = param(False, help="also upload the registered model's verified files "
                                        "as artifacts of the MLflow run")
    loop_batches: bool = param(True, help="mirror each loop batch as an MLflow run")


def _settings(run) -> MlflowSettings | None:
    settings = run.settings("mlflow")
    return settings if settings is not None and settings.tracking_uri else None


@hookimpl
def specloop_settings_schema():
    """Declare ``plugins.mlflow``."""
    return MlflowSettings


@hookimpl
def specloop_after_run(run, manifest):
    """Mirror a finished run (or a loop batch) as an MLflow run."""
    if (settings := _settings(run)) is not None:
        from ._bridge import mirror

        mirror(run, settings, "run", manifest=manifest)


@hookimpl
def specloop_after_register(run, version):
    """Mirror a registered version as an MLflow model version."""
    if (settings := _settings(run)) is not None:
        from ._bridge import mirror

        mirror(run, settings, "version", version=version)


@hookimpl
def specloop_after_alias_change(run, name, alias, version, previous, action, reason):
    """Move the MLflow alias the way specloop moved its own."""
    if (settings := _settings(run)) is not None:
        from ._bridge import mirror

        mirror(run, settings, "alias", name=name, alias=alias, version=version,
               previous=previous, action=action, reason=reason)


@hookimpl
def specloop_add_cli_commands(subparsers):
    """``specloop mlflow sync``."""
    from ._command import add_commands

    add_commands(subparsers)
