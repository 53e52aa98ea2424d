"""Reading a DVC-tracked file at a git revision (``repo``, ``rev``, ``remote`` options).

DVC is imported only when bytes are actually read at a revision. Deciding what a revision
holds does not need it: for a local repository the ``<file>.dvc`` pointer at that revision
(``git show REV:<file>.dvc``) carries DVC's md5, which is what the stage cache key uses. So
``specloop plan`` and an unchanged ``specloop run`` stay as fast with DVC as without it.
DVC's analytics are switched off before DVC is imported.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

from specloop import ConfigError


def _is_url(repo: str) -> bool:
    return "://" in repo or repo.startswith("git@")


def dvc_root(path: Path) -> Path | None:
    """The nearest folder at or above ``path`` that holds a ``.dvc/`` folder (a DVC repo)."""
    for d in (path, *path.parents):
        if (d / ".dvc").is_dir():
            return d
    return None


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          timeout=60)


class DvcLocation:
    """Where a data node points: the DVC repo, the path inside it and the revision."""

    def __init__(self, ctx: Any, config: Any) -> None:
        self.ctx = ctx
        self.key = getattr(ctx, "key", None) or "data"  # the node's spec key
        self.config = config
        self.rev: str | None = config.rev
        self.remote: str | None = config.remote
        full = Path(config.path) if os.path.isabs(config.path) else ctx.project_dir / config.path
        repo = config.repo
        if repo is not None and _is_url(repo):
            self.url: str | None = repo
            self.root: Path | None = None
            self.path_in_repo = config.path
            return
        self.url = None
        if repo is not None:
            root = Path(repo) if os.path.isabs(repo) else ctx.project_dir / repo
            if not (root / ".dvc").is_dir():
                raise ConfigError(f"{repo!r} is not a DVC repository", key=f"{self.key}.repo",
                                  file=ctx.spec.provenance.where(f"{self.key}.repo"), got=repo,
                                  expected="a folder holding .dvc/ (created by 'dvc init'), "
                                           "or a git URL",
                                  fix="run 'dvc init' there, or point data.repo at the "
                                      "repository that tracks the file")
        else:
            root = dvc_root(full.parent)
            if root is None:
                raise ConfigError(f"{config.path!r} is not inside a DVC repository",
                                  key=f"{self.key}.rev", file=ctx.spec.provenance.where(f"{self.key}.rev"),
                                  got=self.rev, expected="a data file tracked by DVC "
                                                        "('dvc add' in a git repository)",
                                  fix="track the file with 'dvc add', set data.repo, or "
                                      "remove data.rev")
        self.root = root.resolve()
        self.path_in_repo = os.path.relpath(full.resolve(), self.root)

    # -- revisions ---------------------------------------------------------------------------
    def commit(self) -> str:
        """The commit ``rev`` names (HEAD when unset); a clear error when it does not exist."""
        rev = self.rev or "HEAD"
        out = _git(self.root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        if out.returncode != 0:
            tags = _git(self.root, "tag", "--list").stdout.split()
            raise ConfigError(f"DVC revision {rev!r} does not exist in {str(self.root)!r}",
                              key=f"{self.key}.rev", file=self.ctx.spec.provenance.where(f"{self.key}.rev"),
                              got=rev, expected="a git tag, branch or commit of that repository",
                              fix="pick an existing revision (git tag / git log in the data "
                                  "repository)",
                              extra=[("tags", ", ".join(tags) or "(none)")])
        return out.stdout.strip()

    def md5(self) -> str:
        """DVC's md5 of the file at the revision (from its ``.dvc`` pointer when possible)."""
        if self.url is None:
            commit = self.commit()
            shown = _git(self.root, "show", f"{commit}:{self.path_in_repo}.dvc")
            if shown.returncode == 0:
                import yaml

                outs = (yaml.safe_load(shown.stdout) or {}).get("outs") or []
                for out in outs:
                    if out.get("path") == os.path.basename(self.path_in_repo) and out.get("md5"):
                        return str(out["md5"])
        return self._md5_from_dvc()

    def _md5_from_dvc(self) -> str:
        """Ask DVC itself (a URL, or a file inside a tracked folder or a pipeline output)."""
        fs = self._filesystem()
        try:
            info = fs.info(self.path_in_repo)
        except FileNotFoundError:
            raise ConfigError(f"{self.path_in_repo!r} does not exist at revision "
                              f"{self.rev or 'HEAD'!r} of {self.repo_label}", key=f"{self.key}.path",
                              file=self.ctx.spec.provenance.where(f"{self.key}.path"),
                              got=self.config.path, expected="a file DVC or git tracks at "
                                                             "that revision",
                              fix=f"check {self.key}.path and {self.key}.rev") from None
        md5 = (info.get("dvc_info") or {}).get("md5") or info.get("md5")
        if md5:
            return str(md5)
        return hashlib.md5(self.read_bytes()).hexdigest()  # a plain git file

    @property
    def repo_label(self) -> str:
        """The repository, for messages."""
        return self.url or str(self.root)

    def _filesystem(self) -> Any:
        os.environ["DVC_NO_ANALYTICS"] = "1"
        from dvc.api import DVCFileSystem

        return DVCFileSystem(self.url or str(self.root), rev=self.rev or None)

    def read_bytes(self) -> bytes:
        """The file's bytes at the revision, through ``dvc.api`` (fetched from the remote
        when not in the local DVC cache)."""
        os.environ["DVC_NO_ANALYTICS"] = "1"
        import dvc.api

        try:
            with dvc.api.open(self.path_in_repo, repo=self.url or str(self.root),
                              rev=self.rev or None, remote=self.remote, mode="rb") as fh:
                return fh.read()
        except Exception as exc:
            raise ConfigError(f"DVC cannot read {self.path_in_repo!r} at revision "
                              f"{self.rev or 'HEAD'!r} of {self.repo_label}", key=f"{self.key}.rev",
                              file=self.ctx.spec.provenance.where(f"{self.key}.rev"), got=self.rev,
                              expected="a revision whose data is in the DVC cache or remote",
                              fix="push the data ('dvc push') or name the remote with "
                                  "data.remote=<name>",
                              extra=[("detail", f"{type(exc).__name__}: {exc}")]) from None

    def record(self, md5: str) -> dict[str, Any]:
        """What the manifest keeps about this file."""
        return {"md5": md5, "rev": self.rev, "commit": None if self.url else self.commit(),
                "repo": self.repo_label, "path_in_repo": self.path_in_repo, "tracked_by": "dvc"}


def workspace_record(ctx: Any, path: Path, md5: str) -> dict[str, Any] | None:
    """For a workspace file DVC tracks: its md5, and the commit that holds exactly that
    version (``None`` when the workspace copy is not committed)."""
    root = dvc_root(path.parent)
    pointer = path.with_name(path.name + ".dvc")
    if root is None or not pointer.is_file():
        return None
    import yaml

    try:
        outs = (yaml.safe_load(pointer.read_text()) or {}).get("outs") or []
    except (OSError, yaml.YAMLError):
        return None
    recorded = next((o.get("md5") for o in outs if o.get("path") == path.name), None)
    commit = None
    if recorded == md5:
        rel = os.path.relpath(pointer.resolve(), root.resolve())
        head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        clean = _git(root, "status", "--porcelain", "--", rel)
        if head.returncode == 0 and not clean.stdout.strip():
            commit = head.stdout.strip()
    return {"md5": md5, "rev": None, "commit": commit, "repo": str(root.resolve()),
            "path_in_repo": os.path.relpath(path.resolve(), root.resolve()),
            "tracked_by": "dvc"}
