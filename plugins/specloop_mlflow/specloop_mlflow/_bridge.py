"""What the hooks do: one MLflow client per command, bounded requests, idempotent mirrors.

Every mirrored object carries the specloop identity it mirrors (``specloop.run_id`` on runs,
``specloop.version`` on model versions) and is looked up by it before anything is created,
so a retried or repeated mirror never duplicates. A failure stops the mirroring for the rest
of the command (one warning, no second wait on a server that is down) and never touches
specloop's record, which committed before the hook was called.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import specloop
from specloop import PluginError

from . import __version__

DIST = f"specloop-mlflow {__version__}"
MODEL_DIR = "specloop-model"
_TAG_MAX = 5000  # MLflow accepts 8000 characters per tag value; keep a margin
_PARAM_MAX = 6000
_down: dict[str, str] = {}  # run id -> why mirroring stopped for the rest of that command


def public_uri(uri: str) -> str:
    """``uri`` without user and password, fit for a message."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        return parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl()
    return uri


@contextlib.contextmanager
def http_limits(settings: Any):
    """MLflow's client reads its timeout and retry policy from the environment on each request:
    bound them for the bridge's calls (and restore whatever was set before). Its links to the
    UI on stdout and its INFO lines are silenced: specloop's own output stays clean."""
    values = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
              "MLFLOW_HTTP_REQUEST_TIMEOUT": str(settings.timeout),
              "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.retries),
              "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
              "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.3"}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    import mlflow  # noqa: F401 - configures its loggers when first imported: before the change

    log = logging.getLogger("mlflow")
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def describe(exc: BaseException, settings: Any) -> str:
    """One short line for what went wrong, with no credentials in it."""
    text = " ".join(str(exc).split())
    if "Connection refused" in text or "NewConnectionError" in text:
        text = "connection refused"
    elif "timed out" in text.lower() or "ReadTimeout" in text:
        text = f"no answer within {settings.timeout} s"
    elif "Max retries exceeded" in text:
        text = text.split("Caused by", 1)[-1].strip(" ()")
    return re.sub(r"//[^/@\s]+@", "//", text)[:300] or type(exc).__name__


def failure(settings: Any, what: str, exc: BaseException) -> PluginError:
    uri = public_uri(settings.tracking_uri)
    return PluginError(
        f"mlflow: could not mirror the {what} to MLflow at {uri} ({describe(exc, settings)}); "
        "specloop's record is committed and unaffected", plugin="mlflow", distribution=DIST,
        fix="check that the server answers (curl <tracking_uri>/health) and the "
            "MLFLOW_TRACKING_* credentials, then run `specloop mlflow sync`")


def mirror(run: Any, settings: Any, what: str, **event: Any) -> None:
    """Mirror one event; a failure is one warning (``fail: warn``) or a PluginError."""
    if run.run_id in _down:
        return  # already reported for this command: no second wait on a server that is down
    try:
        with http_limits(settings):
            bridge = Bridge(run, settings)
            {"run": bridge.mirror_run, "version": bridge.mirror_version,
             "alias": bridge.mirror_alias}[what](**event)
    except Exception as exc:  # noqa: BLE001 - whatever MLflow raised, the record stands
        error = failure(settings, what, exc)
        _down[run.run_id] = error.args[0]
        if settings.fail == "error":
            raise error from None  # MLflow's own message may hold the URI's credentials
        warnings.warn(f"{error.args[0]}; fix: {error.fix}", stacklevel=2)


def _ms(iso: str | None) -> int | None:
    return int(datetime.fromisoformat(iso).timestamp() * 1000) if iso else None


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    text = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    return {prefix.rstrip("."): text[:_PARAM_MAX]}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _TAG_MAX else text[:_TAG_MAX - 1] + "…"


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "\\'") + "'"


class Bridge:
    """The MLflow side of one command: its experiment, runs and registered model."""

    def __init__(self, run: Any, settings: Any) -> None:
        from mlflow import MlflowClient

        self.run, self.settings = run, settings
        self.client = MlflowClient(tracking_uri=settings.tracking_uri,
                                   registry_uri=settings.registry_uri or settings.tracking_uri)
        self.model = settings.registered_model or run.model_name

    # -- runs ---------------------------------------------------------------------------------

    def experiment_id(self) -> str:
        name = self.settings.experiment or self.run.model_name
        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                return self.client.create_experiment(name, tags={"specloop.project": name})
            except Exception:  # created meanwhile by another command
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
        return found.experiment_id

    def find_run(self, key: str, value: str) -> Any:
        runs = self.client.search_runs(
            [self.experiment_id()], f"tags.`{key}` = {_quote(value)}", max_results=1)
        return runs[0] if runs else None

    def ensure_run(self, run_id: str, *, batch: str | None = None) -> Any:
        """The MLflow run mirroring specloop run ``run_id`` (a loop ``batch`` of it): found by
        tag, or created with its identity tags."""
        key = f"{run_id}/{batch}" if batch else run_id
        found = self.find_run("specloop.mirror_key", key)
        if found is not None:
            return found
        tags = {"specloop.mirror_key": key, "specloop.run_id": run_id,
                "specloop.project": self.run.model_name,
                "mlflow.runName": f"loop {batch}" if batch else f"specloop {run_id}",
                "mlflow.source.name": "specloop", "mlflow.source.type": "JOB",
                "mlflow.note.content": (
                    "Mirrored from specloop, which stays the record: promote and roll back "
                    f"with `specloop registry`. `specloop runs show {run_id}` has the manifest.")}
        if batch:
            tags["specloop.batch"] = batch
        return self.client.create_run(self.experiment_id(), tags=tags)

    def mirror_run(self, manifest: dict) -> None:
        if manifest.get("command") == "loop":
            if self.settings.loop_batches:
                self.mirror_batch(manifest)
            return
        from mlflow.entities import Metric, Param, RunTag

        mrun = self.ensure_run(manifest["run_id"])
        if mrun.data.tags.get("specloop.mirrored") == "true":
            return  # mirrored completely before: nothing to add
        rid = mrun.info.run_id
        config = specloop.redact(self.run, manifest.get("config") or {})
        params = [Param(k, v) for k, v in sorted(_flatten(config).items())]
        when = _ms(manifest.get("ended")) or _ms(manifest.get("started")) or 0
        metrics = [Metric(k, float(v), when, 0) for k, v in sorted((manifest.get("metrics")
                                                                     or {}).items())
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        tags = [RunTag(k, _short(v)) for k, v in self.run_tags(manifest).items() if v is not None]
        for i in range(0, max(len(params), len(metrics), len(tags)), 100):
            self.client.log_batch(rid, metrics=metrics[i:i + 100], params=params[i:i + 100],
                                  tags=tags[i:i + 100])
        status = "FINISHED" if manifest.get("status") == "succeeded" else "FAILED"
        self.client.set_terminated(rid, status, end_time=_ms(manifest.get("ended")))
        self.client.set_tag(rid, "specloop.mirrored", "true")

    def run_tags(self, manifest: dict) -> dict[str, Any]:
        git = manifest.get("git") or {}
        tags = {"specloop.command": manifest.get("command"),
                "specloop.status": manifest.get("status"),
                "specloop.error": manifest.get("error"),
                "specloop.specloop_version": manifest.get("specloop_version"),
                "specloop.data_fingerprint": manifest.get("data_fingerprint"),
                "specloop.model_version": manifest.get("model_version"),
                "specloop.manifest": self.location(f"runs/{manifest['run_id']}/manifest.json"),
                "specloop.git.commit": git.get("commit"), "specloop.git.dirty": git.get("dirty"),
                "mlflow.source.git.commit": git.get("commit")}
        for name, stage in (manifest.get("stages") or {}).items():
            tags[f"specloop.stage.{name}.key"] = stage.get("key")
            tags[f"specloop.stage.{name}.cached"] = stage.get("cached")
        model_key = ((manifest.get("stages") or {}).get("train") or {}).get("key")
        if model_key:
            tags["specloop.model_artifact"] = self.location(f"artifacts/{model_key}")
        return {k: v if isinstance(v, str) else json.dumps(v) if v is not None else None
                for k, v in tags.items()}

    def mirror_batch(self, manifest: dict) -> None:
        batch = manifest["batch"]
        mrun = self.ensure_run(manifest["run_id"], batch=str(batch["batch"]))
        if mrun.data.tags.get("specloop.mirrored") == "true":
            return
        rid = mrun.info.run_id
        for k in ("rows", "drift_share", "challenger_value", "champion_value"):
            if isinstance(batch.get(k), (int, float)):
                self.client.log_metric(rid, k, float(batch[k]), timestamp=0, step=0)
        if batch.get("metric") and isinstance(batch.get("value"), (int, float)):
            self.client.log_metric(rid, batch["metric"], float(batch["value"]), timestamp=0, step=0)
        for k in ("command", "outcome", "reason", "champion", "new_version", "drifted_columns"):
            if batch.get(k, manifest.get(k)) is not None:
                self.client.set_tag(rid, f"specloop.{k}", _short(batch.get(k, manifest.get(k))))
        self.client.set_terminated(rid, "FINISHED")
        self.client.set_tag(rid, "specloop.mirrored", "true")

    def location(self, relpath: str) -> str:
        """Where ``relpath`` lives in specloop's store, as a URL."""
        url = self.run.spec.store.url
        root = self.run.store.root
        if "://" in url and not url.startswith("file://"):
            return f"{url.split('://', 1)[0]}://{root}/{relpath}"
        return Path(root, relpath).as_uri()

    # -- registered versions ----------------------------------------------------------------

    def ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise
            try:
                self.client.create_registered_model(
                    self.model, tags={"specloop.managed": "true"},
                    description="Mirrored from specloop's registry, which stays the record: "
                                "promote and roll back with `specloop registry`.")
            except MlflowException as again:
                if getattr(again, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                    raise

    def find_version(self, number: int) -> Any:
        found = self.client.search_model_versions(
            f"name = {_quote(self.model)} and tags.`specloop.version` = '{int(number)}'")
        return min(found, key=lambda v: int(v.version)) if found else None

    def mirror_version(self, version: dict) -> Any:
        self.ensure_model()
        found = self.find_version(version["version"])
        if found is not None:
            return found
        mrun = self.ensure_run(version["run_id"]) if version.get("run_id") else None
        source = f"specloop://{version['name']}/versions/{version['version']}"
        if mrun is not None and self.settings.log_model:
            source = self.upload_model(mrun, version)
        files = [a for a in version.get("artifacts") or [] if a.get("key") == version["model_key"]]
        gate = version.get("gate") or {}
        tags = {"specloop.version": str(version["version"]),
                "specloop.model": version["name"],
                "specloop.run_id": version.get("run_id"),
                "specloop.model_key": version["model_key"],
                "specloop.model_artifact": self.location(f"artifacts/{version['model_key']}"),
                "specloop.sha256": _short({a["file"]: a["sha256"] for a in files}),
                "specloop.format": next((a.get("format") for a in files if a.get("format")), None),
                "specloop.gate": _short(gate.get("summary") or gate) if gate else None,
                "specloop.gate.passed": (str(gate["passed"]).lower()
                                         if "passed" in gate else None)}
        for name, value in (version.get("metrics") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                tags[f"specloop.metric.{name}"] = repr(float(value))
        return self.client.create_model_version(
            self.model, source, run_id=mrun.info.run_id if mrun is not None else None,
            tags={k: v for k, v in tags.items() if v is not None},
            description=f"specloop {version['name']} v{version['version']}",
            await_creation_for=min(self.settings.timeout, 30))

    def upload_model(self, mrun: Any, version: dict) -> str:
        """Upload the version's model files as read through specloop's verification (their
        recorded SHA-256), as bytes: nothing is deserialised."""
        files = [a for a in version.get("artifacts") or [] if a.get("key") == version["model_key"]]
        with tempfile.TemporaryDirectory(prefix="specloop-mlflow-") as tmp:
            folder = Path(tmp, MODEL_DIR)
            folder.mkdir()
            for a in files:
                data = self.run.store.get(a["key"], a["file"], registered=a["sha256"])
                (folder / Path(a["file"]).name).write_bytes(data)
            self.client.log_artifacts(mrun.info.run_id, str(folder), MODEL_DIR)
        return f"{mrun.info.artifact_uri.rstrip('/')}/{MODEL_DIR}"

    # -- aliases ----------------------------------------------------------------------------

    def mirror_alias(self, name: str, alias: str, version: int, previous: int | None = None,
                     action: str | None = None, reason: str | None = None) -> None:
        """Point the MLflow ``alias`` at the mirror of ``version``; record specloop's action
        and reason as tags (``action=None``: the alias only, as ``sync`` does)."""
        self.ensure_model()
        target = self.find_version(version)
        if target is None:  # the version was registered while MLflow was away: mirror it now
            target = self.mirror_version(self.run.registry.get(name, version))
        self.client.set_registered_model_alias(self.model, alias, target.version)
        if action is None:
            return
        for key, value in ((f"specloop.{alias}.action", action),
                           (f"specloop.{alias}.reason", reason),
                           (f"specloop.{alias}.previous", previous)):
            if value is not None:
                self.client.set_model_version_tag(self.model, target.version, key, _short(str(value)))
        self.client.set_registered_model_tag(
            self.model, f"specloop.{alias}",
            _short(f"v{version} ({action}{f' from v{previous}' if previous else ''}): {reason}"))


def sync(run: Any, settings: Any) -> dict[str, int]:
    """Mirror what the record holds (every finished run, every version, the aliases as they
    stand), skipping what is mirrored already: the fix after MLflow was away."""
    done = {"runs": 0, "versions": 0, "aliases": 0}
    with http_limits(settings):
        bridge = Bridge(run, settings)
        for rec in run.registry.runs():
            if rec["status"] in ("succeeded", "failed") and rec["command"] != "loop":
                bridge.mirror_run(specloop.read_manifest(run, rec["run_id"]))
                done["runs"] += 1
        for version in run.registry.versions(run.model_name):
            bridge.mirror_version(version)
            done["versions"] += 1
        for alias, number in run.registry.aliases(run.model_name).items():
            bridge.mirror_alias(run.model_name, alias, number)
            done["aliases"] += 1
    return done
