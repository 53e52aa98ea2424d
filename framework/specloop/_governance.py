"""Governed registry operations: gated promotion, rollback and model cards.

``registry promote`` judges the candidate's recorded metrics against the current champion's
recorded metrics with the gate the project declares (the same :func:`judge` that ``specloop
run`` uses). A failing gate changes nothing unless the caller forces it with a reason; the
forced promotion is audited with the reason and the failed gate result.

When ``champion`` moves (promote or rollback), :func:`deploy_champion` deploys the new holder
with the spec's deploy component, so one command moves the model *and* its deployment.
"""

from __future__ import annotations

import json
from typing import Any

from ._pipeline import deploy, judge, run_stage
from .errors import RegistryError

CHAMPION = "champion"


class GateRefused(RegistryError):
    """``registry promote`` was refused by the declared gate (exit code 1, nothing changed)."""

    exit_code = 1

    def __init__(self, message: str, *, gate: dict, fix: str) -> None:
        super().__init__(message, fix=fix)
        self.gate = gate

    def details(self) -> list[tuple[str, str]]:
        failed = [c for c in self.gate.get("checks", []) if not c.get("passed", True)]
        lines = [("gate", self.gate.get("summary", "failed"))]
        lines += [("failed check", _check_text(c)) for c in failed]
        return lines + super().details()


def _num(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def _check_text(check: dict) -> str:
    """One line for one gate check (any gate's checks: ``check``/``value``/``champion``)."""
    if "check" not in check:
        return json.dumps(check, default=str)
    text = str(check["check"])
    if "value" in check:
        text += f": {_num(check['value'])}"
    if "champion" in check:
        text += f" vs champion {_num(check['champion'])}"
    return text


def promote(ctx: Any, version: int, *, alias: str = CHAMPION, force: bool = False,
            reason: str | None = None) -> dict:
    """Point ``alias`` at ``version``; for ``champion``, only if the declared gate passes.

    Args:
        ctx: The run context of the project (its spec declares the gate).
        version: The candidate version.
        alias: The alias to move.
        force: Promote even though the gate fails (needs ``reason``).
        reason: Why; required with ``force``, recorded in the alias history and audit log.

    Returns:
        ``{"alias", "from", "to", "gate", "forced"}``.

    Raises:
        RegistryError: ``force`` without ``reason``, or an unknown version (exit code 2).
        GateRefused: the gate failed and ``force`` was not given (exit code 1).
    """
    if force and not (reason and reason.strip()):
        raise RegistryError("--force needs --reason TEXT",
                            fix="say why the gate is overridden, e.g. --force --reason "
                                "'hotfix approved by risk team, ticket 123'")
    reg, name = ctx.registry, ctx.model_name
    candidate = reg.get(name, version)
    current = reg.aliases(name).get(alias)
    if current == candidate["version"]:
        return {"alias": alias, "from": current, "to": current, "gate": None, "forced": False,
                "unchanged": True}
    gate = None
    if alias == CHAMPION:
        gate = judge_against_champion(ctx, candidate)
        if not gate["passed"] and not force:
            raise GateRefused(
                f"the gate refuses to promote v{candidate['version']} of {name!r} to {alias}"
                + (f" over v{current}" if current is not None else ""), gate=gate,
                fix="promote a better version, or override with --force --reason TEXT "
                    "(recorded in the audit log)")
    forced = bool(force and gate is not None and not gate["passed"])
    record = dict(gate or {})
    if forced:
        record.update({"forced": True, "force_reason": reason})
    text = reason or (gate["summary"] if gate else "promoted from the command line")
    previous = reg.set_alias(name, alias, candidate["version"], reason=text,
                             gate=record or None, run_id=None,
                             action="force-promote" if forced else "promote", expect=current)
    return {"alias": alias, "from": previous, "to": candidate["version"], "gate": gate,
            "forced": forced}


def deploy_champion(ctx: Any) -> dict | None:
    """Deploy the current champion with the project's deploy component.

    Returns the deploy component's result, or ``None`` when the spec declares no deploy stage
    or the model has no champion. A failing deploy raises :class:`StageError` (exit code 1)
    naming the component; the alias move before it stands.
    """
    spec = ctx.spec
    declared = spec.components.get("deploy")
    champion = ctx.registry.resolve(ctx.model_name, CHAMPION)
    if declared is None or champion is None:
        return None
    result, _ = run_stage(ctx, "deploy", declared.spec,
                          lambda: deploy(ctx, spec, declared.build(), champion, None))
    return result


def judge_against_champion(ctx: Any, candidate: dict) -> dict:
    """The declared gate on the candidate's recorded metrics vs the champion's recorded ones."""
    spec = ctx.spec
    champion = ctx.registry.resolve(ctx.model_name, CHAMPION)
    metrics_c = spec.components["metrics"].build()
    gate = judge(spec, {}, candidate["metrics"], champion["metrics"] if champion else None,
                 metrics_c)
    return {**gate, "candidate": candidate["version"],
            "champion": champion["version"] if champion else None,
            "compared": "recorded metrics"}


# -- model cards ------------------------------------------------------------------------------
def model_card(ctx: Any, version: int) -> dict:
    """Everything known about one version, for ``registry show``."""
    from ._manifest import list_manifests

    reg, name = ctx.registry, ctx.model_name
    v = reg.get(name, version)
    manifest = None
    if v.get("run_id"):
        try:
            manifest = ctx.store.read_json(f"runs/{v['run_id']}/manifest.json")
        except (OSError, ValueError):
            manifest = None
    if manifest is None:
        manifest = next((m for m in list_manifests(ctx.store)
                         if m.get("run_id") == v.get("run_id")), None)
    history = [h for h in reg.alias_history(name)
               if h["version"] == v["version"] or h["previous"] == v["version"]]
    audit = [a for a in reg.audit(name) if a["version"] == v["version"]]
    model = next((a for a in v.get("artifacts", []) if a["role"] == "model"
                  and a["file"] == "model.bin"), None)
    return {
        "name": name, "version": v["version"], "aliases": v["aliases"],
        "created_at": v["created_at"], "metrics": v["metrics"],
        "data_fingerprint": v["data_fingerprint"],
        "source": v.get("source"), "run_id": v.get("run_id"),
        "run": None if manifest is None else {
            "command": manifest.get("command"), "status": manifest.get("status"),
            "started": manifest.get("started"), "overrides": manifest.get("overrides"),
            "git": manifest.get("git")},
        "config": (manifest or {}).get("config") or v.get("config"),
        "config_from": "run manifest" if manifest and manifest.get("config") else "registry",
        "gate": v.get("gate"),
        "model": model, "artifacts": v.get("artifacts", []),
        "alias_history": history, "audit": audit,
    }


def render_card(card: dict) -> str:
    """The model card as text."""
    import yaml

    lines = [f"{card['name']} v{card['version']}  aliases: {', '.join(card['aliases']) or '-'}",
             f"created:  {card['created_at']}"]
    src = card.get("source") or {}
    run = card.get("run")
    where = f"run {card['run_id']}"
    if run:
        where += f" ({run['command']}, {run['status']}, started {run['started']})"
    else:
        where += " (no manifest in the store)"
    if src.get("kind") == "loop":
        where += f"; retrained by the loop on batch {src.get('batch')}"
    lines.append(f"source:   {where}")
    if run and run.get("overrides"):
        lines.append(f"overrides: {' '.join(run['overrides'])}")
    if run and (run.get("git") or {}).get("commit"):
        git = run["git"]
        lines.append(f"git:      {git['commit']}{' (dirty)' if git.get('dirty') else ''}")
    lines.append(f"data:     {card['data_fingerprint']}")
    lines += ["", "metrics:"]
    lines += [f"  {k:<20} {x:.4f}" if isinstance(x, (int, float)) else f"  {k:<20} {x}"
              for k, x in card["metrics"].items()]
    gate = card.get("gate") or {}
    lines += ["", f"gate:     {gate.get('summary', 'not recorded')}"]
    for c in gate.get("checks", []):
        mark = "pass" if c.get("passed", True) else "FAIL"
        lines.append(f"  [{mark}] {_check_text(c)}")
    model = card.get("model")
    lines.append("")
    if model:
        lines += [f"model:    {model['file']} ({model.get('format') or 'unknown format'}), "
                  f"artifact {model['key']}",
                  f"sha256:   {model['sha256']}",
                  "trusted types: " + (", ".join(model.get("trusted_types") or []) or
                                       "(none beyond skops' defaults)")]
    else:
        lines.append("model:    no artifact hashes recorded (registered by an older version)")
    others = [a for a in card.get("artifacts", []) if a is not model]
    for a in others:
        lines.append(f"  {a['role']}/{a['file']}  sha256 {a['sha256']}")
    lines += ["", "alias history:"]
    if card["alias_history"]:
        for h in card["alias_history"]:
            arrow = (f"v{h['previous']} → v{h['version']}" if h["previous"]
                     else f"→ v{h['version']}")
            lines.append(f"  {h['at']}  {h['alias']}: {arrow}  ({h['reason']})")
    else:
        lines.append("  (never held an alias)")
    lines += ["", f"config ({card['config_from']}):"]
    body = yaml.safe_dump(card.get("config") or {}, sort_keys=False).rstrip()
    lines += ["  " + line for line in body.splitlines()]
    return "\n".join(lines)
