"""The artifact writer: encodes a run's artifacts and stores them in a helper process.

A first ``specloop run`` has to turn three things into bytes that the plain script never
writes: the data set and the split halves (Parquet) and the fitted model (skops). Encoding
them is cheap next to what the encoders cost to *import*: skops builds its table of trusted
scikit-learn types at import (every estimator module, and pytest through
``sklearn.utils._testing``), pyarrow is large. On a writer thread none of it overlaps with
training, because imports and HistGradientBoosting's fit both hold the GIL.

So the pipeline starts this module as a child process (``python -m specloop._artifact_writer``)
as soon as it knows a stage will compute an artifact. The child imports the encoders on the
other core while the parent loads the data and fits; it then receives each artifact (frames,
the fitted estimator and the model component) over a private pipe, encodes it, and writes it
with :meth:`ArtifactStore.put` (temporary folder, fsync, rename, ``_meta.json`` with every
file's SHA-256), replying with the record. Pickle on that pipe never leaves one trust domain
(a parent and the child it started, same user, same code); what reaches the store is exactly
what the in-process path writes: skops by default, its trusted types recorded, hashes that
loading verifies.

If the child dies mid-write, the parent raises an :class:`ArtifactError` naming the artifact
and the child's exit status and last error output; the store's atomic write means nothing
half-written is visible, and the parent removes the child's temporary folder. Anything the
child cannot receive (a component or a model that does not pickle) is encoded and written
in the parent instead, as is everything when ``SPECLOOP_ARTIFACT_WRITER=thread`` is set or
when this process has the encoders imported already (see :func:`_child_pays_off`).
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from .errors import ArtifactError

ENV = "SPECLOOP_ARTIFACT_WRITER"
_HEADER = struct.Struct("!Q")


@dataclass
class ParquetFile:
    """A DataFrame to be stored as a Parquet file."""

    frame: Any


@dataclass
class ModelFile:
    """A fitted model to be serialized by its component.

    Its ``format`` and trusted types go into the artifact's metadata
    (see :func:`specloop._model_artifacts.model_files`).
    """

    component: Any
    fitted: Any


def encode(files: dict[str, Any]) -> tuple[dict[str, bytes], dict]:
    """Turn ``files`` (bytes, :class:`ParquetFile`, :class:`ModelFile`) into bytes.

    Returns:
        ``(name -> bytes, metadata the encoders add)``.
    """
    from ._model_artifacts import model_files
    from ._tabular import to_parquet

    out: dict[str, bytes] = {}
    meta: dict = {}
    for name, value in files.items():
        if isinstance(value, ParquetFile):
            out[name] = to_parquet(value.frame)
        elif isinstance(value, ModelFile):
            out[name], model_meta = model_files(value.component, value.fitted)
            meta.update(model_meta)
        else:
            out[name] = value
    return out, meta


def write(store: Any, key: str, files: dict[str, Any], meta: dict) -> dict:
    """Encode ``files`` and store them as the artifact ``key``; return its record."""
    data, extra = encode(files)
    return store.put(key, data, {**meta, **extra})


def _send(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _recv(stream: IO[bytes]) -> bytes | None:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    size = _HEADER.unpack(head)[0]
    body = stream.read(size)
    return body if len(body) == size else None


_children = 0  # writer children this process has started (forked processes inherit it)


def _child_pays_off(model: bool, parquet: bool) -> bool:
    """Whether a child would still import something this process has not.

    The child's gain is the encoders' imports, done on the other core. A process that already
    started one (a sweep member after the first in the basic launcher, a retrain in the loop,
    a member forked from the sweep's warm-up) imports the encoders itself at most once more:
    a child per run would cost every later run seconds of CPU on a core that other members
    or other work need.
    """
    if _children:
        return False
    return (parquet and "pyarrow" not in sys.modules) or (model and "skops.io" not in sys.modules)


class ArtifactWriter:
    """Writes artifacts in a child process, or in this one when that is not possible.

    Calls are not thread-safe: the pipeline makes them from its single writer thread, in
    order, which also keeps its per-key locks held until the artifact is stored.

    Args:
        warm: Components whose optional ``warm_up()`` the child calls on a thread of its
            own as soon as it starts (the model component imports its serializer there).
        parquet: Whether the child should import pandas and pyarrow up front.
        process: ``False`` writes everything in this process; by default the
            ``SPECLOOP_ARTIFACT_WRITER`` variable decides: ``thread`` turns the child off,
            ``process`` always starts one, ``auto`` (the default) starts one when
            :func:`_child_pays_off`.
    """

    def __init__(self, warm: list[Any] = (), *, parquet: bool = True,
                 process: bool | None = None) -> None:
        if process is None:
            mode = os.environ.get(ENV, "auto").strip().lower()
            process = mode == "process" or (mode != "thread" and
                                            _child_pays_off(bool(warm), parquet))
        self._proc: subprocess.Popen | None = None
        self._stderr: IO[bytes] | None = None
        if process:
            self._start(list(warm), parquet)

    @property
    def in_process(self) -> bool:
        """Whether artifacts are written in this process (no live child)."""
        return self._proc is None

    def _start(self, warm: list[Any], parquet: bool) -> None:
        global _children
        try:
            blob = pickle.dumps(warm, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - a component that does not pickle: no warm-up
            blob = pickle.dumps([])
        hello = pickle.dumps({"sys_path": list(sys.path), "parquet": parquet, "warm": blob},
                             protocol=pickle.HIGHEST_PROTOCOL)
        self._stderr = tempfile.TemporaryFile(prefix="specloop-writer-")
        # ``-m`` must find this very specloop even when it is importable here only through
        # a path added at run time; the rest of ``sys.path`` follows in the hello message
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [here, *filter(None, [os.environ.get("PYTHONPATH")])])}
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "specloop._artifact_writer"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=self._stderr, close_fds=True, env=env)
            _send(self._proc.stdin, hello)
            _children += 1
        except OSError:  # no child processes here (sandbox, exotic platform): in process
            self._discard()

    def put(self, store: Any, key: str, files: dict[str, Any], meta: dict) -> dict:
        """Encode and store the artifact ``key``; return the record written.

        Raises:
            ArtifactError: the writer process died before the artifact was stored.
            Exception: whatever encoding or storing raised (re-raised from the child).
        """
        if self._proc is None:
            return write(store, key, files, meta)
        try:
            request = pickle.dumps((store, key, files, meta), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - e.g. a model holding a lambda: write it here
            return write(store, key, files, meta)
        # tells the child whether to wait for the whole warm-up before unpickling (see _serve)
        has_model = any(isinstance(v, ModelFile) for v in files.values())
        request = (b"M" if has_model else b"F") + request
        try:
            _send(self._proc.stdin, request)
            reply = _recv(self._proc.stdout)
        except (BrokenPipeError, ConnectionResetError, ValueError):
            reply = None
        if reply is None:
            raise self._crashed(store, key)
        status, value, text = pickle.loads(reply)  # noqa: S301 - our own child's reply
        if status == "ok":
            return value
        if isinstance(value, BaseException):
            value.add_note(f"(raised in the artifact writer process)\n{text}")
            raise value
        raise ArtifactError(f"the artifact writer process failed to write artifact {key}: "
                            f"{text.strip().splitlines()[-1] if text.strip() else 'unknown'}")

    def _crashed(self, store: Any, key: str) -> ArtifactError:
        proc = self._proc
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        tail = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            tail = self._stderr.read().decode("utf-8", "replace").strip()[-2000:]
        self._discard()
        _remove_partial(store, key)
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        err = ArtifactError(f"the artifact writer process {how} while writing artifact {key}; "
                            "nothing was stored for it (the store is unchanged)",
                            path=store.path("artifacts", key))
        if tail:
            err.add_note(f"writer process output:\n{tail}")
        return err

    def close(self, *, wait: bool = True) -> None:
        """Let the child exit (it finishes nothing more) and reap it; idempotent.

        Args:
            wait: ``False`` only tells the child to exit (it has replied to every write, so
                nothing is lost) and returns at once; a later ``close()`` reaps it. Taking
                a process of scikit-learn's size down takes the kernel some 30 ms, which
                then overlaps with registering and deploying.
        """
        proc = self._proc
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        if not wait:
            return
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung child
            proc.kill()
            proc.wait()
        self._discard()

    def _discard(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def _remove_partial(store: Any, key: str) -> None:
    """Remove what a dead writer left of ``key`` (never visible: no ``_meta.json`` rename)."""
    if not getattr(store, "local", False):
        return  # object stores: files without ``_meta.json`` are never read
    import shutil

    folder = store.path("artifacts")
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.startswith(f".tmp-{key}-"):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


# -- the child ---------------------------------------------------------------------------------
def _serve(inp: IO[bytes], out: IO[bytes]) -> None:
    import traceback

    hello = pickle.loads(_recv(inp) or pickle.dumps(None))  # noqa: S301 - from our parent
    if hello is None:
        return
    sys.path[:] = hello["sys_path"]  # the parent's: plugins importable from the same places
    # Warm up on a thread, so that an artifact that arrives meanwhile (the data set and the
    # split, while skops still imports) is stored at once: a run killed while it fits keeps
    # them. A write that needs a module being imported waits for that import's lock.
    # Two threads must never import the same package at once (a circular import inside it
    # can then see a half-initialized module): frames are unpickled once pandas and pyarrow
    # are imported, a model once the whole warm-up (skops, scikit-learn) is over.
    import threading

    frames_ready, all_ready = threading.Event(), threading.Event()
    threading.Thread(target=_warm_up, args=(hello["parquet"], hello["warm"], frames_ready,
                                            all_ready), name="specloop-warm-up",
                     daemon=True).start()
    while True:
        request = _recv(inp)
        if request is None:
            return
        (all_ready if request[:1] == b"M" else frames_ready).wait()
        try:
            record = write(*pickle.loads(request[1:]))  # noqa: S301 - from our parent
            reply = ("ok", record, "")
        except BaseException as exc:  # noqa: BLE001 - sent back to the parent
            text = traceback.format_exc()
            try:
                pickle.loads(pickle.dumps(exc))
                reply = ("error", exc, text)
            except Exception:  # noqa: BLE001 - an exception that does not pickle
                reply = ("error", None, text)
        _send(out, pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))


def _warm_up(parquet: bool, blob: bytes, frames_ready: Any, all_ready: Any) -> None:
    try:
        try:
            import pandas  # noqa: F401 - frames unpickle into pandas whether or not parquet
            if parquet:
                import pyarrow.parquet  # noqa: F401
        except ImportError:
            pass  # reported, if it matters, by the write that needs it
        frames_ready.set()
        try:
            for component in pickle.loads(blob):  # noqa: S301 - from our parent
                warm_up = getattr(component, "warm_up", None)
                if callable(warm_up):
                    warm_up()
        except Exception:  # noqa: BLE001 - a warm-up is an optimization; writes report errors
            pass
    finally:
        frames_ready.set()
        all_ready.set()


def main() -> None:
    """The child's entry point: serve write requests from stdin until it closes."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt stops
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a print() in a plugin must not corrupt the protocol
    sys.stdout = sys.stderr
    try:
        _serve(inp, out)
    finally:
        out.flush()
        sys.stderr.flush()
    os._exit(0)  # skip tearing down scikit-learn & co.: nothing is left to write


if __name__ == "__main__":
    # run as ``-m``, this file is ``__main__``: serve with the importable module's classes,
    # so that the ParquetFile/ModelFile the parent pickles are the ones ``encode`` knows
    from specloop._artifact_writer import main as _main

    _main()
