"""The stage cache and the registry under real concurrent processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from specloop._registry import Registry
from specloop._store import ArtifactStore

_COMPUTE = textwrap.dedent("""
    import sys, time, os
    from pathlib import Path
    from specloop._registry import Registry
    from specloop._store import ArtifactStore

    root, key, log, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    while time.time() < start - 1.0:    # the registry's first opens race too, but earlier
        time.sleep(0.001)
    index = Registry(Path(root).parent / "registry.db").index
    store = ArtifactStore(root, Path(root), index=index)
    while time.time() < start:          # every process reaches the cache at the same moment
        time.sleep(0.001)
    with store.lock(key) as held:
        assert held
        if store.has(key):
            outcome = "hit"
        else:
            with open(log, "a") as fh:
                fh.write(f"{os.getpid()}\\n")
            data = os.urandom(2_000_000)  # big enough that a torn write would show
            time.sleep(0.3)
            store.put(key, {"a.bin": data, "b.bin": data[::-1]})
            outcome = "computed"
    # read back: complete and verified, never half-written
    a, b = store.get(key, "a.bin"), store.get(key, "b.bin")
    assert a == b[::-1] and len(a) == 2_000_000
    print(outcome)
""")


def test_processes_computing_one_key_compute_it_once(tmp_path):
    import time

    script = tmp_path / "compute.py"
    script.write_text(_COMPUTE)
    log = tmp_path / "computed.log"
    start = str(time.time() + 2.0)
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "store"), "k" * 32,
                               str(log), start], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    outcomes = sorted(o[0].strip() for o in outs)
    assert outcomes == ["computed"] + ["hit"] * 7
    assert len(log.read_text().split()) == 1
    store = ArtifactStore(str(tmp_path / "store"), tmp_path,
                          index=Registry(tmp_path / "registry.db").index)
    leftovers = [n for n in store.list_dir("artifacts") if n.startswith(".tmp-")]
    assert leftovers == []


def test_remote_stores_fall_back_to_first_complete_writer_wins(tmp_path):
    store = ArtifactStore("memory://sweeps-lock-test", tmp_path,
                          index=Registry(tmp_path / "registry.db").index)
    with store.lock("k1") as held:
        assert held is False             # no shared lock: both compute, both publish whole
        store.put("k1", {"x": b"1"})
    store.put("k1", {"x": b"1"})
    assert store.get("k1", "x") == b"1"


_REGISTER = textwrap.dedent("""
    import sys, time
    from specloop._registry import Registry

    path, worker, n, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    while time.time() < start:
        time.sleep(0.001)
    reg = Registry(path)                 # concurrent first opens race on the schema too
    for i in range(n):
        v = reg.register("m", model_key=f"w{worker}-{i}", metrics={"auc": 0.5}, reference_key=None,
                         data_fingerprint=None, run_id=f"w{worker}", config={}, gate=None)
        if i % 2:
            reg.set_alias("m", "challenger", v["version"], reason=f"w{worker}")
    reg.close()
""")


def test_eight_processes_registering_at_once_lose_nothing(tmp_path):
    import time

    script = tmp_path / "register.py"
    script.write_text(_REGISTER)
    db = tmp_path / "reg" / "registry.db"
    n, workers = 12, 8
    start = str(time.time() + 2.0)
    procs = [subprocess.Popen([sys.executable, str(script), str(db), str(w), str(n), start],
                              stderr=subprocess.PIPE, text=True) for w in range(workers)]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    reg = Registry(db)
    versions = reg.versions("m")
    assert [v["version"] for v in versions] == list(range(1, n * workers + 1))
    assert sorted(v["model_key"] for v in versions) == sorted(
        f"w{w}-{i}" for w in range(workers) for i in range(n))
    audit = reg.audit("m")
    assert sum(a["action"] == "register" for a in audit) == n * workers
    assert len(reg.alias_history("m")) == workers * (n // 2)
    assert json.loads(json.dumps(reg.aliases("m")))["challenger"] in range(1, n * workers + 1)
    reg.close()
