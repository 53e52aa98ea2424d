"""The model registry on SQLite: versions, aliases, alias history, an append-only audit log,
and the loop's per-batch state.

Every change is one transaction, so a crash leaves the registry as it was before or after
the change, never between. The audit log refuses ``UPDATE`` and ``DELETE`` with triggers.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from .errors import RegistryError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    model_key TEXT NOT NULL,
    reference_key TEXT,
    metrics TEXT NOT NULL,
    data_fingerprint TEXT,
    run_id TEXT,
    config TEXT,
    gate TEXT,
    source TEXT,
    PRIMARY KEY (name, version)
);
CREATE INDEX IF NOT EXISTS versions_by_key ON versions (name, model_key);
CREATE TABLE IF NOT EXISTS aliases (
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    set_at TEXT NOT NULL,
    PRIMARY KEY (name, alias)
);
CREATE TABLE IF NOT EXISTS alias_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER,
    previous INTEGER,
    at TEXT NOT NULL,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    name TEXT NOT NULL,
    action TEXT NOT NULL,
    version INTEGER,
    alias TEXT,
    reason TEXT,
    gate TEXT,
    run_id TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS version_artifacts (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    role TEXT NOT NULL,
    key TEXT NOT NULL,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER,
    format TEXT,
    trusted_types TEXT,
    PRIMARY KEY (name, version, role, file)
);
CREATE TRIGGER IF NOT EXISTS version_artifacts_no_update BEFORE UPDATE ON version_artifacts
    BEGIN SELECT RAISE(ABORT, 'recorded artifact hashes are immutable'); END;
CREATE TRIGGER IF NOT EXISTS version_artifacts_no_delete BEFORE DELETE ON version_artifacts
    BEGIN SELECT RAISE(ABORT, 'recorded artifact hashes are immutable'); END;
CREATE TABLE IF NOT EXISTS loop_batches (
    name TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    champion INTEGER,
    record TEXT NOT NULL,
    PRIMARY KEY (name, batch_id)
);
"""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


NAME_RULE = ("1-128 letters, digits, '_', '.' or '-', starting with a letter or digit "
             "(no '/', '\\' or '..')")


def valid_name(value: object) -> bool:
    """Whether ``value`` is a safe model or alias name (no path separators, no ``..``)."""
    return isinstance(value, str) and bool(_NAME.match(value)) and ".." not in value


def check_name(value: str, what: str) -> str:
    """Validate a model or alias name: letters, digits, ``_ . -``; no separators or ``..``."""
    if not valid_name(value):
        raise RegistryError(f"invalid {what} {value!r}", fix=f"a {what} is {NAME_RULE}")
    return value


def sqlite_path(url: str, base_dir: Path) -> Path:
    """The file behind a ``sqlite:///path`` URL (relative paths from ``base_dir``)."""
    if not url.startswith("sqlite:///"):
        raise RegistryError(f"unsupported registry URL {url!r}",
                            fix="use sqlite:///path/to/registry.db")
    path = Path(url.removeprefix("sqlite:///"))
    return path if path.is_absolute() else (base_dir / path)


class Registry:
    """Model versions and aliases of one or more models, in a SQLite file.

    Args:
        path: The database file (created with its folder on first use).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA busy_timeout = 60000")
        for attempt in range(100):  # concurrent first opens race on WAL mode and the schema
            try:  # (switching to WAL can report "locked" at once, without the busy handler)
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.executescript(_SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")

    # -- reading -----------------------------------------------------------------------------
    @staticmethod
    def _version_row(row: sqlite3.Row) -> dict:
        out = dict(row)
        for key in ("metrics", "config", "gate", "source"):
            if out.get(key):
                out[key] = json.loads(out[key])
        return out

    def versions(self, name: str) -> list[dict]:
        """All versions of model ``name``, oldest first, with their aliases."""
        aliases = self.aliases(name)
        rows = self._conn.execute("SELECT * FROM versions WHERE name=? ORDER BY version",
                                  (name,)).fetchall()
        out = []
        for row in rows:
            rec = self._version_row(row)
            rec["aliases"] = sorted(a for a, v in aliases.items() if v == rec["version"])
            rec["artifacts"] = self.artifacts(name, rec["version"])
            out.append(rec)
        return out

    def get(self, name: str, version: int) -> dict:
        """One version.

        Raises:
            RegistryError: if it does not exist.
        """
        row = self._conn.execute("SELECT * FROM versions WHERE name=? AND version=?",
                                 (name, int(version))).fetchone()
        if row is None:
            known = [v["version"] for v in self.versions(name)]
            raise RegistryError(f"model {name!r} has no version {version}",
                                fix=f"known versions: {known or 'none'}")
        rec = self._version_row(row)
        rec["aliases"] = sorted(a for a, v in self.aliases(name).items() if v == rec["version"])
        rec["artifacts"] = self.artifacts(name, rec["version"])
        return rec

    def artifacts(self, name: str, version: int) -> list[dict]:
        """The files recorded with a version: role, key, file, SHA-256, size, model format and
        trusted types (empty for versions registered before hashes were recorded)."""
        rows = [dict(r) for r in self._conn.execute(
            "SELECT role, key, file, sha256, size, format, trusted_types FROM version_artifacts "
            "WHERE name=? AND version=? ORDER BY role, file", (name, int(version)))]
        for r in rows:
            r["trusted_types"] = json.loads(r["trusted_types"]) if r["trusted_types"] else []
        return rows

    def find_by_key(self, name: str, model_key: str) -> dict | None:
        """The version registered for a model artifact key, if any."""
        row = self._conn.execute("SELECT * FROM versions WHERE name=? AND model_key=? "
                                 "ORDER BY version LIMIT 1", (name, model_key)).fetchone()
        return self.get(name, row["version"]) if row else None

    def aliases(self, name: str) -> dict[str, int]:
        """``{alias: version}`` for model ``name``."""
        return {r["alias"]: r["version"] for r in self._conn.execute(
            "SELECT alias, version FROM aliases WHERE name=?", (name,))}

    def resolve(self, name: str, alias: str) -> dict | None:
        """The version an alias points at, or ``None``."""
        version = self.aliases(name).get(alias)
        return self.get(name, version) if version is not None else None

    def alias_history(self, name: str) -> list[dict]:
        """Every alias change of model ``name``, oldest first."""
        return [dict(r) for r in self._conn.execute(
            "SELECT * FROM alias_history WHERE name=? ORDER BY id", (name,))]

    def audit(self, name: str) -> list[dict]:
        """The audit log of model ``name``, oldest first."""
        rows = [dict(r) for r in self._conn.execute(
            "SELECT * FROM audit WHERE name=? ORDER BY id", (name,))]
        for r in rows:
            if r.get("gate"):
                r["gate"] = json.loads(r["gate"])
        return rows

    # -- writing -----------------------------------------------------------------------------
    def register(self, name: str, *, model_key: str, metrics: dict, reference_key: str | None,
                 data_fingerprint: str | None, run_id: str | None, config: dict | None,
                 gate: dict | None, source: dict | None = None,
                 reason: str = "registered", artifacts: list[dict] | None = None) -> dict:
        """Add a version (numbered after the highest one), and audit it.

        Args:
            artifacts: The version's files (``role``, ``key``, ``file``, ``sha256``, ``size``
                and, for the model file, ``format`` and ``trusted_types``), recorded in the
                same transaction; loading verifies each file against its recorded hash.

        Returns:
            The new version record.
        """
        check_name(name, "model name")
        with self._tx() as c:
            row = c.execute("SELECT COALESCE(MAX(version), 0) FROM versions WHERE name=?",
                            (name,)).fetchone()
            version = int(row[0]) + 1
            now = _now()
            c.execute("INSERT INTO versions VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      (name, version, now, model_key, reference_key, json.dumps(metrics),
                       data_fingerprint, run_id, json.dumps(config, default=str),
                       json.dumps(gate, default=str), json.dumps(source, default=str)))
            for a in artifacts or []:
                c.execute("INSERT INTO version_artifacts VALUES (?,?,?,?,?,?,?,?,?)",
                          (name, version, a["role"], a["key"], a["file"], a["sha256"],
                           a.get("size"), a.get("format"),
                           json.dumps(a["trusted_types"]) if "trusted_types" in a else None))
            c.execute("INSERT INTO audit (at, name, action, version, reason, gate, run_id) "
                      "VALUES (?,?,?,?,?,?,?)", (now, name, "register", version, reason,
                                                 json.dumps(gate, default=str), run_id))
        return self.get(name, version)

    def set_alias(self, name: str, alias: str, version: int, *, reason: str,
                  gate: dict | None = None, run_id: str | None = None,
                  action: str = "promote", expect: Any = ...) -> int | None:
        """Point ``alias`` at ``version``; record history and audit.

        Args:
            expect: If given, the version (or ``None``) the alias must still point at; a
                gate judged against that holder must not move an alias someone else moved
                in the meantime.

        Returns:
            The version the alias pointed at before, or ``None``.

        Raises:
            RegistryError: the version does not exist, or the alias moved (``expect``).
        """
        check_name(alias, "alias")
        self.get(name, version)
        with self._tx() as c:
            row = c.execute("SELECT version FROM aliases WHERE name=? AND alias=?",
                            (name, alias)).fetchone()
            previous = row["version"] if row else None
            if expect is not ... and previous != expect:
                raise RegistryError(f"{alias!r} of model {name!r} moved from v{expect} to "
                                    f"v{previous} while this change was being decided; "
                                    "nothing changed", fix="run the command again")
            now = _now()
            c.execute("INSERT INTO aliases VALUES (?,?,?,?) ON CONFLICT(name, alias) DO UPDATE "
                      "SET version=excluded.version, set_at=excluded.set_at",
                      (name, alias, int(version), now))
            c.execute("INSERT INTO alias_history (name, alias, version, previous, at, reason) "
                      "VALUES (?,?,?,?,?,?)", (name, alias, int(version), previous, now, reason))
            c.execute("INSERT INTO audit (at, name, action, version, alias, reason, gate, run_id) "
                      "VALUES (?,?,?,?,?,?,?,?)", (now, name, action, int(version), alias,
                                                   reason, json.dumps(gate, default=str), run_id))
        return previous

    def rollback(self, name: str, alias: str = "champion", *, reason: str) -> tuple[int, int]:
        """Move ``alias`` back to the version it pointed at before its current one.

        Returns:
            ``(from_version, to_version)``.

        Raises:
            RegistryError: if the alias has no earlier holder.
        """
        current = self.aliases(name).get(alias)
        if current is None:
            raise RegistryError(f"model {name!r} has no {alias!r} to roll back",
                                fix="register and promote a version first (specloop run)")
        # the holder before the current one: walk the history backwards past the current
        history = [h for h in self.alias_history(name) if h["alias"] == alias]
        target = None
        for h in reversed(history):
            if h["version"] == current and h["previous"] is not None and h["previous"] != current:
                target = h["previous"]
                break
        if target is None:
            raise RegistryError(f"{alias!r} of model {name!r} has no earlier version to roll "
                                "back to", fix="promote another version with "
                                               "'specloop registry promote VERSION'")
        self.set_alias(name, alias, target, reason=reason, action="rollback")
        return current, target

    # -- loop state --------------------------------------------------------------------------
    def processed_batches(self, name: str) -> dict[str, dict]:
        """``{batch_id: record}`` of the batches the loop already processed."""
        return {r["batch_id"]: json.loads(r["record"]) for r in self._conn.execute(
            "SELECT batch_id, record FROM loop_batches WHERE name=? ORDER BY processed_at",
            (name,))}

    def record_batch(self, name: str, batch_id: str, champion: int | None,
                     record: dict[str, Any]) -> None:
        """Mark a batch processed (once: a second call for the same batch is an error)."""
        with self._tx() as c:
            c.execute("INSERT INTO loop_batches VALUES (?,?,?,?,?)",
                      (name, batch_id, _now(), champion, json.dumps(record, default=str)))


def registry_path(url: str | None, store_root: str, store_local: bool, base_dir: Path) -> Path:
    """The SQLite file ``store.registry`` names (default: next to a local store)."""
    if url is None:
        if store_local:
            return Path(store_root) / "registry.db"
        # one local registry per remote store, so two stores never share model versions
        import hashlib

        tag = hashlib.sha256(store_root.encode()).hexdigest()[:12]
        return base_dir / ".specloop" / f"registry-{tag}.db"
    return sqlite_path(url, base_dir)


def open_registry(url: str | None, store_root: str, store_local: bool, base_dir: Path) -> Registry:
    """Open the registry named by ``store.registry`` (default: next to a local store)."""
    return Registry(registry_path(url, store_root, store_local, base_dir))
