"""The record's governed operations: gated promotion (a failing gate changes nothing unless
forced with an audited reason), rollback, model cards, ``registry check``, and ``reproduce``: a
recorded run again from its manifest's resolved config, up to ``evaluate`` in a throwaway store
and registry (no cache, no register or deploy), its metrics compared; changed data is read at the
recorded DVC commit, or the run stops with both md5s. When ``champion`` moves, the new holder is
deployed under the model's lock."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any, Callable

import yaml

from ._context import RunContext, make_context, thread_limits
from ._flow import deploy_champion, judge, move_alias, signature_of
from ._manifest import Manifest, environment, read_manifest, save
from ._model_artifacts import MODEL_FILE, recorded_file
from ._plan import STAGES, deployment_status, plan
from ._redact import MASK
from ._runner import Pipeline
from .errors import ArtifactError, RegistryError, ReproduceError, SpecloopError

CHAMPION = "champion"


class GateRefused(RegistryError):
    """``registry promote`` was refused by the declared gate (exit code 1, nothing changed)."""

    exit_code = 1

    def __init__(self, message: str, *, gate: dict, fix: str) -> None:
        super().__init__(message, fix=fix)
        self.gate = gate

    def details(self) -> list[tuple[str, str]]:
        failed = [("failed check", _check_text(c)) for c in self.gate.get("checks", [])
                  if not c.get("passed", True)]
        return [("gate", self.gate.get("summary", "failed")), *failed, *super().details()]


def _num(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def _check_text(check: dict) -> str:
    """One line for one gate check (any gate's checks: ``check``/``value``/``champion``)."""
    if "check" not in check:
        return json.dumps(check, default=str)
    return (str(check["check"]) + (f": {_num(check['value'])}" if "value" in check else "")
            + (f" vs champion {_num(check['champion'])}" if "champion" in check else ""))


def promote(ctx: Any, version: int, *, alias: str = CHAMPION, force: bool = False,
            reason: str | None = None, deploy: bool = True) -> dict:
    """:func:`specloop.promote`; a refusing gate raises :class:`GateRefused` (exit 1), the other
    refusals a :class:`RegistryError` (exit 2)."""
    if force and not (reason and reason.strip()):
        raise RegistryError("--force needs --reason TEXT",
                            fix="say why the gate is overridden, e.g. --force --reason "
                                "'hotfix approved by risk team, ticket 123'")
    reg, name = ctx.registry, ctx.model_name
    with reg.model_lock(name):
        candidate = reg.get(name, version)
        current = reg.aliases(name).get(alias)
        if current == candidate["version"]:
            return {"alias": alias, "from": current, "to": current, "gate": None,
                    "forced": False, "unchanged": True, "deployment": None}
        gate = judge_against_champion(ctx, candidate) if alias == CHAMPION else None
        if gate is not None and not gate["passed"] and not force:
            raise GateRefused(
                f"the gate refuses to promote v{candidate['version']} of {name!r} to {alias}"
                + (f" over v{current}" if current is not None else ""), gate=gate,
                fix="promote a better version, or override with --force --reason TEXT "
                    "(recorded in the audit log)")
        forced = bool(force and gate is not None and not gate["passed"])
        record = {**(gate or {}), **({"forced": True, "force_reason": reason} if forced else {})}
        text = reason or (gate["summary"] if gate else "promoted from the command line")
        previous = move_alias(ctx, alias, candidate["version"], expect=current, reason=text,
                              gate=record or None,
                              action="force-promote" if forced else "promote")
        if gate is not None:
            ctx.say(("gate FAILED (forced): " if forced else "gate: ") + gate["summary"])
        ctx.say(f"{alias}: {f'v{previous} ' if previous else ''}→ v{candidate['version']}")
        deployed = deploy_champion(ctx) if alias == CHAMPION and deploy else None
    return {"alias": alias, "from": previous, "to": candidate["version"], "gate": gate,
            "forced": forced, "deployment": deployed}


def rollback(ctx: Any, alias: str = CHAMPION, *, reason: str | None = None,
             deploy: bool = True) -> dict:
    """:func:`specloop.rollback`. The holder seen at the start must still hold the alias under
    the model's lock (compare-and-set): of two concurrent rollbacks, the second is refused."""
    reg, name = ctx.registry, ctx.model_name
    seen = reg.aliases(name).get(alias)
    with reg.model_lock(name):
        current, target = reg.rollback_target(name, alias)
        if current != seen:
            raise RegistryError(f"{alias!r} of model {name!r} moved from v{seen} to v{current} "
                                "while this rollback was waiting; nothing changed",
                                fix="check 'specloop registry history', then run it again")
        move_alias(ctx, alias, target, expect=current, reason=reason or "rollback",
                   action="rollback")
        ctx.say(f"{alias}: v{current} → v{target} (rolled back)")
        deployed = deploy_champion(ctx) if alias == CHAMPION and deploy else None
    return {"alias": alias, "from": current, "to": target, "deployment": deployed}


def judge_against_champion(ctx: Any, candidate: dict) -> dict:
    """The declared gate on the candidate's recorded metrics vs the champion's recorded ones
    (and the engine's signature rule)."""
    champion = ctx.registry.resolve(ctx.model_name, CHAMPION)
    sigs = (signature_of(ctx, champion), signature_of(ctx, candidate)) if champion else \
        (None, None)
    gate = judge(ctx, candidate["metrics"], champion["metrics"] if champion else None, sigs)
    return {**gate, "candidate": candidate["version"],
            "champion": champion["version"] if champion else None,
            "compared": "recorded metrics"}


# -- model cards ------------------------------------------------------------------------------
def model_card(ctx: Any, version: int) -> dict:
    """Everything known about one version, for ``registry show``."""
    reg, name = ctx.registry, ctx.model_name
    v = reg.get(name, version)
    try:
        manifest = read_manifest(ctx, v["run_id"]) if v.get("run_id") else None
    except SpecloopError:
        manifest = None
    return {
        "name": name, **{k: v[k] for k in ("version", "aliases", "created_at", "metrics",
                                           "data_fingerprint", "source", "run_id")},
        "run": None if manifest is None else {
            k: manifest.get(k) for k in ("command", "status", "started", "overrides", "git")},
        "config": (manifest or {}).get("config") or v.get("config"),
        "config_from": "run manifest" if manifest and manifest.get("config") else "registry",
        "gate": v.get("gate"), "model": recorded_file(v, v["model_key"], MODEL_FILE),
        "artifacts": v["artifacts"],
        "alias_history": [h for h in reg.alias_history(name)
                          if v["version"] in (h["version"], h["previous"])],
        "audit": [a for a in reg.audit(name) if a["version"] == v["version"]]}


def render_card(card: dict) -> str:
    lines = [f"{card['name']} v{card['version']}  aliases: {', '.join(card['aliases']) or '-'}",
             f"created:  {card['created_at']}"]
    run, src = card.get("run"), card.get("source") or {}
    git = (run or {}).get("git") or {}
    where = f"run {card['run_id']} " + (
        f"({run['command']}, {run['status']}, started {run['started']})" if run
        else "(no manifest in the store)")
    if src.get("kind") == "loop":
        where += f"; retrained by the loop on batch {src.get('batch')}"
    lines.append(f"source:   {where}")
    if run and run.get("overrides"):
        lines.append(f"overrides: {' '.join(run['overrides'])}")
    if git.get("commit"):
        lines.append(f"git:      {git['commit']}{' (dirty)' if git.get('dirty') else ''}")
    lines += [f"data:     {card['data_fingerprint']}", "", "metrics:"]
    lines += [f"  {k:<20} {x:.4f}" if isinstance(x, (int, float)) else f"  {k:<20} {x}"
              for k, x in card["metrics"].items()]
    gate, model = card.get("gate") or {}, card.get("model")
    lines += ["", f"gate:     {gate.get('summary', 'not recorded')}"]
    lines += [f"  [{'pass' if c.get('passed', True) else 'FAIL'}] {_check_text(c)}"
              for c in gate.get("checks", [])]
    lines.append("")
    if model:
        lines += [f"model:    {model['file']} ({model.get('format') or 'unknown format'}), "
                  f"artifact {model['key']}", f"sha256:   {model['sha256']}",
                  "trusted types: " + (", ".join(model.get("trusted_types") or []) or
                                       "(none beyond skops' defaults)")]
    else:
        lines.append("model:    no artifact hashes recorded (registered by an older version)")
    lines += [f"  {a['role']}/{a['file']}  sha256 {a['sha256']}"
              for a in card.get("artifacts", []) if a is not model]
    lines += ["", "alias history:", *([
        f"  {h['at']}  {h['alias']}: " + (f"v{h['previous']} → " if h["previous"] else "→ ")
        + f"v{h['version']}  ({h['reason']})" for h in card["alias_history"]]
        or ["  (never held an alias)"])]
    lines += ["", f"config ({card['config_from']}):"]
    body = yaml.safe_dump(card.get("config") or {}, sort_keys=False).rstrip()
    return "\n".join(lines + ["  " + line for line in body.splitlines()])


def check_registry(ctx: Any) -> list[dict]:
    """``specloop registry check``: the file's integrity, every version's artifacts against
    their recorded hashes, and the champion's deployment, as ``{"what", "status", "detail"}``
    rows (status ``ok``, ``missing``, ``tampered`` or ``failed``)."""
    try:
        problems = ctx.registry.integrity()
    except RegistryError as exc:  # refused as it opened: nothing else can be checked
        return [{"what": f"registry file {ctx.spec.store.registry or 'default'}",
                 "status": "failed", "detail": f"{exc.args[0]} (fix: {exc.fix})"}]
    rows = [{"what": f"registry file {ctx.registry.path}",
             "status": "ok" if not problems else "failed",
             "detail": "; ".join(problems[:3]) or "SQLite integrity check passed"}]
    for v in ctx.registry.versions(ctx.model_name):
        for a in v["artifacts"]:
            what = f"v{v['version']} {a['role']}/{a['file']}"
            try:
                ctx.store.get(a["key"], a["file"], registered=a["sha256"])
                rows.append({"what": what, "status": "ok", "detail": a["sha256"][:16]})
            except ArtifactError as exc:
                rows.append({"what": what, "status": "missing" if exc.missing else "tampered",
                             "detail": exc.args[0]})
    if ctx.spec.components.get("deploy") is not None:
        ok, reason = deployment_status(ctx)
        rows.append({"what": "champion deployment", "status": "ok" if ok else "failed",
                     "detail": reason + ("" if ok else " (the next run deploys it again)")})
    return rows


# -- reproduce --------------------------------------------------------------------------------
REPRODUCED_STAGES = STAGES[:STAGES.index("evaluate") + 1]


def _compare_metrics(recorded: dict, reproduced: dict, tolerance: float) -> list[dict]:
    rows = []
    for name in sorted(set(recorded) | set(reproduced)):
        a, b = recorded.get(name), reproduced.get(name)
        numeric = isinstance(a, (int, float)) and isinstance(b, (int, float))
        rows.append({"metric": name, "recorded": a, "reproduced": b,
                     "difference": b - a if numeric else None,
                     "ok": abs(b - a) <= tolerance if numeric else a == b})
    return rows


def _environment_diff(recorded: dict, current: dict) -> list[dict]:
    def diff(old: dict | None, new: dict | None, keys: Any = None, prefix: str = "") -> list:
        old, new = old or {}, new or {}
        return [{"what": prefix + k, "recorded": old.get(k), "now": new.get(k)}
                for k in keys or sorted(set(old) | set(new)) if old.get(k) != new.get(k)]

    return (diff(recorded, current, ("python", "platform"))
            + diff(recorded.get("packages"), current.get("packages"))
            + diff(recorded.get("env"), current.get("env"), prefix="$"))


def reproduce(project_dir: str | Path, run_id: str, *, tolerance: float = 0.0,
              echo: Callable[[str], None] | None = None) -> dict:
    """Re-run ``run_id`` and report whether its metrics came back (within ``tolerance``), with
    ``metrics`` rows, ``environment``/``stage_keys`` differences and ``notes``. A
    :class:`ReproduceError` if the recorded data is gone."""
    project_dir = Path(project_dir).resolve()
    notes: list[str] = []
    with closing(make_context(project_dir, echo=echo)) as home:
        manifest = read_manifest(home, run_id)
        if manifest.get("status") != "succeeded" or not manifest.get("metrics"):
            raise ReproduceError(f"run {run_id} has no recorded metrics to compare with",
                                 recorded=f"status {manifest.get('status')!r}",
                                 fix="reproduce a run whose status is 'succeeded' "
                                     "(specloop runs list)")
        scratch = tempfile.TemporaryDirectory(prefix="specloop-reproduce-",
                                              ignore_cleanup_errors=True)
        # the recorded config (secrets were never recorded: they come from the environment),
        # with a throwaway store and registry
        masked = [o for o in manifest.get("overrides") or [] if not o.endswith("=" + MASK)]
        with scratch, closing(make_context(project_dir, masked, recorded=manifest,
                                           echo=echo)) as ctx:
            ctx.spec.store = dataclasses.replace(
                ctx.spec.store, url=str(Path(scratch.name) / "store"), storage_options={},
                registry=f"sqlite:///{Path(scratch.name) / 'registry.db'}")
            plans = _check_data(ctx, manifest, run_id, notes)
            plans = [p for p in plans if p.name in REPRODUCED_STAGES]
            for p in plans:
                p.cached = False  # a fresh store: nothing is cached, but be explicit
            pipe = Pipeline(ctx, plans)
            pipe.preflight()
            doc = pipe.manifest = Manifest(ctx, "reproduce")
            doc.doc["reproduces"] = run_id
            doc.record_plan(plans)
            with thread_limits(ctx.spec.project.threads):
                pipe.run()
            metrics = json.loads(ctx.store.get(doc.doc["stages"]["evaluate"]["key"],
                                               "metrics.json"))
            final = doc.finish("succeeded", metrics=metrics)
            save(home, final)
    rows = _compare_metrics(manifest["metrics"], metrics, tolerance)
    keys = {name: ((manifest.get("stages") or {}).get(name, {}).get("key"),
                   final["stages"].get(name, {}).get("key")) for name in REPRODUCED_STAGES}
    return {"run_id": ctx.run_id, "reproduces": run_id,
            "reproduced": all(r["ok"] for r in rows), "tolerance": tolerance,
            "metrics": rows, "environment": _environment_diff(manifest.get("environment") or {},
                                                              environment()),
            "stage_keys": [{"stage": n, "recorded": a, "reproduced": b}
                           for n, (a, b) in keys.items() if a != b],
            "notes": notes, "model_version": manifest.get("model_version")}


def _check_data(ctx: RunContext, manifest: dict, run_id: str, notes: list[str]) -> list:
    """The plans, once the data matches the recorded fingerprint (read at the recorded DVC
    commit if it changed); a :class:`ReproduceError` with both fingerprints if it cannot."""
    plans, fingerprint = plan(ctx, None), manifest.get("data_fingerprint")
    recorded, current = dict(fingerprint) if isinstance(fingerprint, dict) else {}, plans[0].files
    if not recorded:
        if fingerprint != plans[0].key:
            notes.append("the data fingerprint is not a file md5; it could not be verified")
        return plans
    if current == recorded:
        return plans
    changed = [p for p in recorded if current.get(p) != recorded[p]]
    commits = {(manifest.get("data_versions") or {}).get(p, {}).get("commit") for p in changed}
    data, commit, why = ctx.spec.components["data"].config, None, None
    if len(commits) == 1 and None not in commits and hasattr(data, "rev"):
        commit = data.rev = commits.pop()  # read the changed file at the recorded commit
        try:
            plans = plan(ctx, None)
            current = plans[0].files
            notes.append(f"data changed in the workspace; read commit {commit[:12]} "
                         "through DVC, as recorded")
        except SpecloopError as exc:
            why = str(exc.args[0]) if exc.args else type(exc).__name__
    if current != recorded:
        path = next((p for p in recorded if current.get(p) != recorded[p]),
                    next(iter(current), "?"))
        raise ReproduceError(
            f"the data of run {run_id} has changed since it ran", file=path,
            recorded=f"md5 {recorded.get(path)}", current=f"md5 {current.get(path)}",
            fix="restore that version of the file (e.g. git checkout <commit> && "
                "dvc checkout), or track the data with DVC so the recorded revision "
                "can be fetched"
                + (f" (reading commit {commit[:12]} through DVC failed: {why})" if why else ""))
    return plans
