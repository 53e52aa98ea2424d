"""The registry's SQLite file: created atomically (built aside, then linked into place),
migrated, and never silently replaced: an empty file, a non-database and a missing file whose
``<name>.id`` marker remains are refused (SQLite alone would start a new, empty registry)."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import RegistryError

VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (name TEXT NOT NULL, version INTEGER NOT NULL,
    created_at TEXT NOT NULL, model_key TEXT NOT NULL, reference_key TEXT, metrics TEXT NOT NULL,
    data_fingerprint TEXT, run_id TEXT, config TEXT, gate TEXT, source TEXT,
    PRIMARY KEY (name, version));
CREATE INDEX IF NOT EXISTS versions_by_key ON versions (name, model_key);
CREATE TABLE IF NOT EXISTS aliases (name TEXT NOT NULL, alias TEXT NOT NULL,
    version INTEGER NOT NULL, set_at TEXT NOT NULL, PRIMARY KEY (name, alias));
CREATE TABLE IF NOT EXISTS alias_history (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
    alias TEXT NOT NULL, version INTEGER, previous INTEGER, at TEXT NOT NULL, reason TEXT,
    action TEXT);
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
    name TEXT NOT NULL, action TEXT NOT NULL, version INTEGER, alias TEXT, reason TEXT, gate TEXT,
    run_id TEXT);
CREATE TABLE IF NOT EXISTS version_artifacts (name TEXT NOT NULL, version INTEGER NOT NULL,
    role TEXT NOT NULL, key TEXT NOT NULL, file TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER,
    format TEXT, trusted_types TEXT, component TEXT, PRIMARY KEY (name, version, role, file));
CREATE TABLE IF NOT EXISTS loop_batches (name TEXT NOT NULL, batch_id TEXT NOT NULL,
    processed_at TEXT NOT NULL, champion INTEGER, record TEXT NOT NULL,
    PRIMARY KEY (name, batch_id));
CREATE TABLE IF NOT EXISTS loop_events (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
    batch_id TEXT NOT NULL, at TEXT NOT NULL, event TEXT NOT NULL, detail TEXT);
CREATE TABLE IF NOT EXISTS artifacts (key TEXT PRIMARY KEY, record TEXT NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deployments (name TEXT NOT NULL, target TEXT NOT NULL,
    version INTEGER NOT NULL, result TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (name, target));
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, command TEXT, status TEXT, started TEXT,
    ended TEXT, sha256 TEXT, pid INTEGER, host TEXT, model_version INTEGER, overrides TEXT);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS version_artifacts_no_update BEFORE UPDATE ON version_artifacts
    BEGIN SELECT RAISE(ABORT, 'recorded artifact hashes are immutable'); END;
CREATE TRIGGER IF NOT EXISTS version_artifacts_no_delete BEFORE DELETE ON version_artifacts
    BEGIN SELECT RAISE(ABORT, 'recorded artifact hashes are immutable'); END;
"""

# columns added since version 1 (ALTER TABLE ADD COLUMN keeps the existing rows)
_ADDED = (("alias_history", "action", "TEXT"), ("version_artifacts", "component", "TEXT"))


def _broken(path: Path, what: str) -> RegistryError:
    return RegistryError(
        f"the registry {path} {what}; specloop will not start a new one in its place",
        extra=[("file", str(path))],
        fix=f"restore the registry from a backup (specloop registry backup FILE makes one); "
            f"'specloop registry check' reports what is wrong; to start over on purpose, "
            f"remove {path.name}, {path.name}.id and the store folder together")


def marker(path: Path) -> Path:
    """The file that says a registry was created at ``path``."""
    return path.with_name(path.name + ".id")


def build(dest: Path, fill: Callable[[sqlite3.Connection], Any],
          place: Callable[[Path, Path], Any]) -> None:
    """Fill a new database under a temporary name beside ``dest``, then ``place`` it there."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with closing(sqlite3.connect(str(tmp))) as conn, conn:  # committed, then closed
            fill(conn)
        place(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _link(tmp: Path, path: Path) -> None:
    with suppress(FileExistsError):  # atomic: fails if another process created it first
        os.link(tmp, path)


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if new) the registry at ``path``, checked and migrated; a
    :class:`RegistryError` if it is empty, not a database, or gone although one was made."""
    path = Path(path)
    if not path.exists():
        # look at the file again after the marker: another process may have just made both
        if marker(path).exists() and not path.exists():
            raise _broken(path, "is missing although a registry was created there")
        build(path, lambda c: c.executescript(f"{SCHEMA}PRAGMA user_version = {VERSION};"),
              _link)
    elif path.stat().st_size == 0:
        raise _broken(path, "is an empty file")
    conn = sqlite3.connect(str(path), timeout=60, isolation_level=None,
                           check_same_thread=False)  # Registry serialises use with a lock
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA busy_timeout = 60000")
        for attempt in range(100):  # concurrent first opens race on WAL mode and migrations
            try:  # (switching to WAL can report "locked" at once, without the busy handler)
                conn.execute("PRAGMA journal_mode = WAL")
                _migrate(conn)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _broken(path, f"is not a readable SQLite database ({exc})") from None
    if not marker(path).exists():  # a new registry, or one from before markers existed
        marker(path).write_text(uuid.uuid4().hex + "\n")
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > VERSION:
        raise RegistryError(f"the registry was written by a newer specloop (schema {current}, "
                            f"this one reads up to {VERSION})", fix="upgrade specloop")
    if current == VERSION:
        return
    with transaction(conn):
        for statement in SCHEMA.split(";\n"):
            if statement.strip():
                conn.execute(statement)
        for table, column, kind in _ADDED:
            if column not in {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        conn.execute(f"PRAGMA user_version = {VERSION}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any exception); inside an open
    transaction, join it (all or nothing)."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
