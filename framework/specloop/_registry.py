"""The model registry on SQLite, the root of trust: versions, aliases and their history, an
append-only audit log, deployments, runs, loop state and the artifact index. Every change is a
transaction (a crash leaves it before or after a loop step); alias moves are compare-and-set
and, with the deployment that follows, serialised per model by :meth:`Registry.model_lock`."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from . import _database
from ._store import pid_alive
from .errors import RegistryError
from .schema import NAME_PATTERN

_NAME = re.compile(NAME_PATTERN)
NAME_RULE = ("1-128 letters, digits, '_', '.' or '-', starting with a letter or digit "
             "(no '/', '\\' or '..')")


def now() -> str:
    """The current UTC time as ISO 8601 (milliseconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def valid_name(value: object) -> bool:
    """Whether ``value`` is a safe model or alias name (no path separators, no ``..``)."""
    return isinstance(value, str) and bool(_NAME.match(value))


def check_name(value: str, what: str) -> str:
    """Validate a model or alias name: letters, digits, ``_ . -``; no separators or ``..``."""
    if not valid_name(value):
        raise RegistryError(f"invalid {what} {value!r}", fix=f"a {what} is {NAME_RULE}")
    return value


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


class ArtifactIndex:
    """specloop's record of every artifact it wrote (key → files with their SHA-256, metadata):
    the store is trusted only as far as it goes; what it does not list is never read."""

    def __init__(self, registry: "Registry") -> None:
        self._registry = registry

    def get(self, key: str) -> dict | None:
        return next((r["record"] for r in self._registry._rows(
            "SELECT record FROM artifacts WHERE key=?", (key,), record="null")), None)

    def put(self, key: str, record: dict) -> None:
        self._registry._insert("INSERT OR REPLACE INTO artifacts VALUES (?,?,?)", key,
                               _json(record), now())


class Registry:
    """Versions and aliases of one or more models, in the SQLite file ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn = _database.connect(self.path)
        # one connection, shared by threads (a server loads models off its event loop): every
        # statement and every transaction holds this lock
        self._mutex = threading.RLock()
        self._locks: dict[str, Any] = {}
        self.index = ArtifactIndex(self)

    def close(self) -> None:
        self._conn.close()

    def _rows(self, sql: str, args: tuple = (), **json_columns: str) -> list[dict]:
        """Rows as dicts, each of ``json_columns`` decoded (an empty one as its default)."""
        with self._mutex:
            rows = self._conn.execute(sql, args).fetchall()
        return [{**dict(r), **{k: json.loads(r[k] or d) for k, d in json_columns.items()}}
                for r in rows]

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One transaction; nested calls join the outermost (all or nothing)."""
        with self._mutex, _database.transaction(self._conn) as conn:
            yield conn

    @contextmanager
    def model_lock(self, name: str) -> Iterator[None]:
        """Serialise alias moves and deployments of model ``name`` across processes (an
        advisory file lock the kernel releases when its holder dies; re-entrant here)."""
        from filelock import FileLock  # ~30 ms: `specloop validate` imports this module

        if name not in self._locks:
            folder = self.path.parent / ".locks"
            folder.mkdir(parents=True, exist_ok=True)
            self._locks[name] = FileLock(str(folder / f"{self.path.name}.{name}.lock"))
        with self._locks[name]:
            yield

    def versions(self, name: str) -> list[dict]:
        """All versions of model ``name``, oldest first, with their aliases and artifacts."""
        return self._versions(name)

    def _versions(self, name: str, where: str = "", args: tuple = ()) -> list[dict]:
        aliases = self.aliases(name)
        return [{**v, "aliases": sorted(a for a, n in aliases.items() if n == v["version"]),
                 "artifacts": self.artifacts(name, v["version"])} for v in self._rows(
            f"SELECT * FROM versions WHERE name=? {where} ORDER BY version", (name, *args),
            metrics="null", config="null", gate="null", source="null")]

    def get(self, name: str, version: int) -> dict:
        """One version; a :class:`RegistryError` naming the known ones if it does not exist."""
        rows = self._versions(name, "AND version=?", (int(version),))
        if not rows:
            known = [v["version"] for v in self.versions(name)]
            raise RegistryError(f"model {name!r} has no version {version}",
                                fix=f"known versions: {known or 'none'}")
        return rows[0]

    def artifacts(self, name: str, version: int) -> list[dict]:
        """The files recorded with a version: role, key, file, SHA-256, size, and for the
        model file its format, trusted types and the component that saved it."""
        return self._rows("SELECT role, key, file, sha256, size, format, trusted_types, "
                          "component FROM version_artifacts WHERE name=? AND version=? ORDER "
                          "BY role, file", (name, int(version)), trusted_types="[]",
                          component="null")

    def find_by_key(self, name: str, model_key: str) -> dict | None:
        """The (first) version registered for a model artifact key, if any."""
        return next(iter(self._versions(name, "AND model_key=?", (model_key,))), None)

    def aliases(self, name: str) -> dict[str, int]:
        """``{alias: version}`` for model ``name``."""
        return {r["alias"]: r["version"] for r in self._rows(
            "SELECT alias, version FROM aliases WHERE name=?", (name,))}

    def resolve(self, name: str, alias: str) -> dict | None:
        """The version an alias points at, or ``None``."""
        return None if (v := self.aliases(name).get(alias)) is None else self.get(name, v)

    def alias_history(self, name: str) -> list[dict]:
        """Every alias change of model ``name``, oldest first."""
        return self._rows("SELECT * FROM alias_history WHERE name=? ORDER BY id", (name,))

    def audit(self, name: str) -> list[dict]:
        """The audit log of model ``name``, oldest first."""
        return self._rows("SELECT * FROM audit WHERE name=? ORDER BY id", (name,), gate="null")

    def register(self, name: str, *, model_key: str, metrics: dict, reference_key: str | None,
                 data_fingerprint: str | None, run_id: str | None, config: dict | None,
                 gate: dict | None, source: dict | None = None,
                 reason: str = "registered", artifacts: list[dict] | None = None) -> dict:
        """Add a version (numbered after the highest one), audit it, and return it. Its files
        (``artifacts``: role, key, file, sha256, size; for the model file also format,
        trusted_types, component) are recorded with it: loading verifies each against them."""
        check_name(name, "model name")
        with self.transaction() as c:
            version = c.execute("SELECT COALESCE(MAX(version), 0) FROM versions WHERE name=?",
                                (name,)).fetchone()[0] + 1
            c.execute("INSERT INTO versions VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      (name, version, now(), model_key, reference_key, _json(metrics),
                       data_fingerprint, run_id, _json(config), _json(gate), _json(source)))
            c.executemany("INSERT INTO version_artifacts VALUES (?,?,?,?,?,?,?,?,?,?)", [
                (name, version, a["role"], a["key"], a["file"], a["sha256"], a.get("size"),
                 a.get("format"), _json(a["trusted_types"]) if "trusted_types" in a else None,
                 _json(a["component"]) if a.get("component") else None) for a in artifacts or []])
            self._audit(c, name, "register", version, None, reason, gate, run_id)
            return self.get(name, version)

    def _audit(self, c: Any, name: str, action: str, version: int | None, alias: str | None,
               reason: str | None, gate: Any = None, run_id: str | None = None) -> None:
        c.execute("INSERT INTO audit (at, name, action, version, alias, reason, gate, run_id) "
                  "VALUES (?,?,?,?,?,?,?,?)", (now(), name, action, version, alias, reason,
                                               _json(gate), run_id))

    def _insert(self, sql: str, *values: Any) -> None:
        with self.transaction() as c:
            c.execute(sql, values)

    def set_alias(self, name: str, alias: str, version: int, *, reason: str,
                  gate: dict | None = None, run_id: str | None = None,
                  action: str = "promote", expect: Any = ...) -> int | None:
        """Point ``alias`` at ``version``, record history and audit; return the previous holder.
        ``expect`` (a version or ``None``) is compare-and-set: a gate judged against one holder
        never moves an alias someone else moved since (a :class:`RegistryError`)."""
        check_name(alias, "alias")
        with self.transaction() as c:
            self.get(name, version)
            row = c.execute("SELECT version FROM aliases WHERE name=? AND alias=?",
                            (name, alias)).fetchone()
            previous = row["version"] if row else None
            if expect is not ... and previous != expect:
                raise RegistryError(f"{alias!r} of model {name!r} moved from v{expect} to "
                                    f"v{previous} while this change was being decided; "
                                    "nothing changed", fix="run the command again")
            at = now()
            c.execute("INSERT INTO aliases VALUES (?,?,?,?) ON CONFLICT(name, alias) DO UPDATE "
                      "SET version=excluded.version, set_at=excluded.set_at",
                      (name, alias, int(version), at))
            c.execute("INSERT INTO alias_history (name, alias, version, previous, at, reason, "
                      "action) VALUES (?,?,?,?,?,?,?)",
                      (name, alias, int(version), previous, at, reason, action))
            self._audit(c, name, action, int(version), alias, reason, gate, run_id)
        return previous

    def rollback_target(self, name: str, alias: str = "champion") -> tuple[int, int]:
        """``(current, target)`` of a rollback: the holders before the current one form a
        stack (a move pushes the holder it replaced, a rollback pops), so a rollback never
        returns to the version just rolled back from. A :class:`RegistryError` if there is none."""
        current = self.aliases(name).get(alias)
        if current is None:
            raise RegistryError(f"model {name!r} has no {alias!r} to roll back",
                                fix="register and promote a version first (specloop run)")
        stack: list[int] = []
        for h in (h for h in self.alias_history(name) if h["alias"] == alias):
            if h["action"] == "rollback":
                del stack[-1:]
            elif h["previous"] not in (None, h["version"]):
                stack.append(h["previous"])
        while stack and stack[-1] == current:
            stack.pop()
        if not stack:
            raise RegistryError(f"{alias!r} of model {name!r} has no earlier version to roll "
                                "back to", fix="promote another version with "
                                               "'specloop registry promote VERSION'")
        return current, stack[-1]

    def record_deployment(self, name: str, target: str, version: int, result: dict) -> None:
        """Record what ``target`` (a deploy component's key) now serves, and audit it."""
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO deployments VALUES (?,?,?,?,?)",
                      (name, target, int(version), _json(result), now()))
            self._audit(c, name, "deploy", int(version), None,
                        f"deployed to {result.get('location', target)}")

    def deployment(self, name: str, target: str) -> dict | None:
        """``{"version", "result", "at"}`` of the last deployment to ``target``, or ``None``."""
        return next(iter(self._rows("SELECT version, result, at FROM deployments WHERE name=? "
                                    "AND target=?", (name, target), result="null")), None)

    def record_run(self, doc: dict, sha256: str) -> None:
        """Record a run (from its manifest) and the SHA-256 of the manifest as written."""
        self._insert("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?)", doc["run_id"],
                     doc["command"], doc["status"], doc["started"], doc["ended"], sha256,
                     os.getpid(), socket.gethostname(), doc.get("model_version"),
                     _json(doc.get("overrides") or []))

    def runs(self) -> list[dict]:
        """Every recorded run, oldest first; runs whose process died show ``interrupted``."""
        host = socket.gethostname()
        return [{**r, "status": "interrupted"} if r["status"] == "running" and r["host"] == host
                and not pid_alive(r["pid"]) else r
                for r in self._rows("SELECT * FROM runs ORDER BY run_id", overrides="[]")]

    def processed_batches(self, name: str) -> dict[str, dict]:
        """``{batch_id: record}`` of the batches the loop already processed, in that order
        (each record with its ``processed_at``)."""
        return {r["batch_id"]: {**r["record"], "processed_at": r["processed_at"]}
                for r in self._rows("SELECT batch_id, record, processed_at FROM loop_batches "
                                    "WHERE name=? ORDER BY processed_at, rowid", (name,),
                                    record="null")}

    def record_batch(self, name: str, batch_id: str, champion: int | None,
                     record: dict[str, Any]) -> None:
        """Mark a batch processed (once: a second call for the same batch is an error)."""
        self._insert("INSERT INTO loop_batches VALUES (?,?,?,?,?)", name, batch_id, now(),
                     champion, _json(record))

    def record_event(self, name: str, batch_id: str, event: str, detail: dict) -> None:
        """Record something the loop noticed about a batch (changed after processing …)."""
        self._insert("INSERT INTO loop_events (name, batch_id, at, event, detail) VALUES "
                     "(?,?,?,?,?)", name, batch_id, now(), event, _json(detail))

    def events(self, name: str) -> list[dict]:
        """The loop's recorded events, oldest first."""
        return self._rows("SELECT * FROM loop_events WHERE name=? ORDER BY id", (name,),
                          detail="null")

    def backup(self, dest: Path) -> Path:
        """Write a consistent copy of the registry to ``dest`` with SQLite's online backup
        (consistent while others write), under a temporary name renamed into place."""
        with self._mutex:
            _database.build(Path(dest), self._conn.backup, os.replace)
        return Path(dest)

    def integrity(self) -> list[str]:
        """SQLite's integrity check of the file: ``[]`` when sound, else its messages."""
        with self._mutex:
            rows = [r[0] for r in self._conn.execute("PRAGMA integrity_check")]
        return [] if rows == ["ok"] else rows


def open_registry(url: str | None, default: Path, base_dir: Path, *,
                  store_root: str | None = None) -> Registry:
    """Open the registry ``store.registry`` names (``default`` when unset; a relative path is under
    ``base_dir``); refuse an unsupported URL, a broken file (see ``_database``) or one inside the
    local store folder (whoever writes the store could rewrite it)."""
    if url and not url.startswith("sqlite:///"):
        raise RegistryError(f"unsupported registry URL {url!r}",
                            fix="use sqlite:///path/to/registry.db")
    path = base_dir / url.removeprefix("sqlite:///") if url else default
    if store_root is not None and os.path.isabs(store_root):
        try:
            inside = Path(path).resolve().is_relative_to(Path(store_root).resolve())
        except (OSError, ValueError):
            inside = False
        if inside:
            raise RegistryError(f"the registry {path} lies inside the artifact store "
                                f"{store_root}", fix="put store.registry outside store.url: "
                                "whoever can write the store must not be able to rewrite the "
                                "record of it")
    return Registry(path)
