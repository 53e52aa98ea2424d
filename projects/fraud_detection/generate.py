"""Synthetic card-transaction data for the fraud-detection example.

The story told by the data:

* Months 2024-01 .. 2024-06 form the training history (``train.csv``). Fraud
  there is "classic": large amounts, night-time hours, merchants far from the
  card holder's home, country mismatches and freshly issued cards. It is easy
  to learn, so a first model scores well.
* Months 2024-07 and 2024-08 arrive as ``incoming/YYYY-MM.csv`` and follow
  exactly the same distribution, so the first model keeps performing.
* From ``drift_month`` (2024-09 by default) a new fraud pattern appears:
  small online gift-card purchases at ordinary daytime hours, close to home,
  from the card holder's own country and on old cards, but arriving in bursts
  (many transactions in the last 24 hours). It makes up about half of the
  fraud from then on and the first model misses it. At the same time the
  overall mix shifts (more gift cards, more online payments, busier cards),
  which a per-feature drift test picks up.

The output is fully deterministic for a given seed: each month draws from its
own sub-seed and floats are written with a fixed number of decimals.

Usage::

    python generate.py [--out DIR] [--seed N] [--rows-per-month N] [--dvc [--tag NAME]]

With ``--dvc`` the output folder is also a git + DVC repository: the files are tracked with
``dvc add``, committed (and tagged with ``--tag``), and pushed to a local DVC remote in the
project's work area (``.specloop/dvc-remote``; no network). Each call records one data
version, so ``specloop run data.rev=<tag>`` can train on any earlier one.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import numpy as np
except ImportError:  # a Python outside the project's environment
    sys.stderr.write(
        f"generate.py: numpy is not installed for {sys.executable}\n"
        "  fix: run it with the Python of specloop's environment, from the checkout:\n"
        "         .venv/bin/python projects/fraud_detection/generate.py\n"
        "       (set up with: python3 -m venv .venv && .venv/bin/pip install -e '.[dev]')\n")
    raise SystemExit(2) from None

CATEGORIES = ["grocery", "fuel", "travel", "electronics", "restaurants",
              "online_retail", "entertainment", "gift_cards"]
CHANNELS = ["pos", "online", "atm"]
COLUMNS = ["transaction_id", "month", "amount", "hour", "merchant_category",
           "channel", "country_match", "card_age_days", "tx_last_24h",
           "distance_km", "customer_age", "is_fraud"]

FRAUD_RATE = 0.035
# Legitimate mix before and after the drift month.
CAT_P = np.array([0.22, 0.12, 0.06, 0.08, 0.18, 0.16, 0.12, 0.06])
CAT_P_DRIFT = np.array([0.18, 0.10, 0.05, 0.07, 0.15, 0.16, 0.10, 0.19])
CHAN_P = np.array([0.60, 0.32, 0.08])
CHAN_P_DRIFT = np.array([0.44, 0.48, 0.08])
CLASSIC_CAT_P = np.array([0.04, 0.06, 0.25, 0.30, 0.04, 0.25, 0.04, 0.02])
# Daytime-heavy hour profile for ordinary purchases.
HOUR_W = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.5, 3, 5, 6, 6.5, 7, 8, 7.5,
                   7, 7, 7.5, 8, 8, 7, 6, 4.5, 3, 2])
HOUR_P = HOUR_W / HOUR_W.sum()


def _month_label(index: int) -> str:
    """Month ``index`` (1-based, counted from 2024-01) as ``YYYY-MM``."""
    year, month = divmod(index - 1, 12)
    return f"{2024 + year}-{month + 1:02d}"


def _legit(rng: np.random.Generator, n: int, drifted: bool) -> dict:
    return {
        "amount": rng.lognormal(np.log(40.0), 0.8, n),
        "hour": rng.choice(24, n, p=HOUR_P),
        "merchant_category": rng.choice(8, n, p=CAT_P_DRIFT if drifted else CAT_P),
        "channel": rng.choice(3, n, p=CHAN_P_DRIFT if drifted else CHAN_P),
        "country_match": (rng.random(n) < 0.93).astype(int),
        "card_age_days": rng.integers(1, 3650, n),
        "tx_last_24h": rng.poisson(2.0 if drifted else 1.5, n),
        "distance_km": rng.lognormal(np.log(8.0), 1.2, n),
    }


def _classic_fraud(rng: np.random.Generator, n: int) -> dict:
    night = rng.random(n) < 0.5
    young = rng.random(n) < 0.7
    return {
        "amount": rng.lognormal(np.log(150.0), 1.0, n),
        "hour": np.where(night, rng.integers(0, 6, n), rng.choice(24, n, p=HOUR_P)),
        "merchant_category": rng.choice(8, n, p=CLASSIC_CAT_P),
        "channel": rng.choice(3, n, p=[0.35, 0.45, 0.20]),
        "country_match": (rng.random(n) < 0.55).astype(int),
        "card_age_days": np.where(young, rng.integers(1, 180, n), rng.integers(1, 3650, n)),
        "tx_last_24h": rng.poisson(1.5, n),
        "distance_km": rng.lognormal(np.log(120.0), 1.4, n),
    }


def _burst_fraud(rng: np.random.Generator, n: int) -> dict:
    """The new pattern: small daytime online gift-card purchases in bursts."""
    return {
        "amount": rng.lognormal(np.log(25.0), 0.35, n),
        "hour": rng.integers(9, 20, n),
        "merchant_category": np.full(n, CATEGORIES.index("gift_cards")),
        "channel": np.full(n, CHANNELS.index("online")),
        "country_match": np.ones(n, dtype=int),
        "card_age_days": rng.integers(400, 3650, n),
        "tx_last_24h": 5 + rng.poisson(6.0, n),
        "distance_km": rng.lognormal(np.log(5.0), 0.6, n),
    }


def _month_rows(rng: np.random.Generator, month: str, n: int, drifted: bool,
                first_id: int) -> list[list]:
    """Rows of one month in shuffled order, ids counting up from ``first_id``."""
    n_fraud = int(rng.binomial(n, FRAUD_RATE))
    n_burst = n_fraud // 2 if drifted else 0
    parts = [(_legit(rng, n - n_fraud, drifted), 0),
             (_classic_fraud(rng, n_fraud - n_burst), 1),
             (_burst_fraud(rng, n_burst), 1)]
    rows = []
    for cols, is_fraud in parts:
        size = len(cols["amount"])
        ages = np.clip(rng.normal(45, 14, size), 18, 90).astype(int)
        for i in range(size):
            rows.append([
                month,
                f"{cols['amount'][i]:.2f}",
                int(cols["hour"][i]),
                CATEGORIES[cols["merchant_category"][i]],
                CHANNELS[cols["channel"][i]],
                int(cols["country_match"][i]),
                int(cols["card_age_days"][i]),
                int(cols["tx_last_24h"][i]),
                f"{cols['distance_km'][i]:.2f}",
                int(ages[i]),
                is_fraud,
            ])
    order = rng.permutation(len(rows))
    return [[first_id + k] + rows[j] for k, j in enumerate(order)]


def _write_csv(path: Path, rows: list[list]) -> None:
    """Write ``rows`` to ``path`` atomically (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _summary(path: Path, rows: list[list]) -> dict:
    frauds = sum(r[-1] for r in rows)
    return {"path": str(path), "rows": len(rows),
            "fraud_rate": round(frauds / max(len(rows), 1), 4)}


def generate(out_dir: Path, seed: int = 7, rows_per_month: int = 3000,
             months: int = 12, train_months: int = 6, drift_month: int = 9) -> dict:
    """Write ``train.csv`` and ``incoming/YYYY-MM.csv`` files under ``out_dir``.

    Returns a summary with the path, row count and fraud rate of every file.
    """
    out_dir = Path(out_dir)
    month_seeds = np.random.SeedSequence(seed).spawn(months)
    train_rows: list[list] = []
    summary: dict = {"seed": seed, "drift_month": _month_label(drift_month),
                     "incoming": {}}
    next_id = 1
    for m in range(1, months + 1):
        rng = np.random.default_rng(month_seeds[m - 1])
        label = _month_label(m)
        rows = _month_rows(rng, label, rows_per_month, m >= drift_month, next_id)
        next_id += len(rows)
        if m <= train_months:
            train_rows.extend(rows)
        else:
            path = out_dir / "incoming" / f"{label}.csv"
            _write_csv(path, rows)
            summary["incoming"][label] = _summary(path, rows)
    train_path = out_dir / "train.csv"
    _write_csv(train_path, train_rows)
    summary["train"] = _summary(train_path, train_rows)
    return summary


def _run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"generate.py: {' '.join(cmd)} failed in {cwd}:\n"
                         f"{(done.stderr or done.stdout).strip()}")
    return done.stdout.strip()


def _dvc_command() -> list[str]:
    """The ``dvc`` next to this Python (a virtual environment), else the one on PATH."""
    local = Path(sys.executable).with_name("dvc")
    if local.is_file():
        return [str(local)]
    found = shutil.which("dvc")
    if found is None:
        sys.stderr.write("generate.py: --dvc needs DVC, which is not installed for "
                         f"{sys.executable}\n  fix: .venv/bin/pip install -e '.[dvc]' "
                         "(from the checkout), or pip install 'specloop[dvc]'\n")
        raise SystemExit(2)
    return [found]


def track_with_dvc(out_dir: Path, remote: Path, tag: str | None) -> str:
    """Commit the generated files as one DVC data version; return the commit."""
    dvc = _dvc_command()
    if not (out_dir / ".git").exists():
        _run(["git", "init", "-q"], out_dir)
    if not (out_dir / ".dvc").is_dir():
        _run([*dvc, "init", "-q"], out_dir)
        remote.mkdir(parents=True, exist_ok=True)
        _run([*dvc, "remote", "add", "-d", "-f", "local", os.path.relpath(remote, out_dir)],
             out_dir)
    _run([*dvc, "add", "-q", "train.csv", "incoming"], out_dir)
    _run(["git", "add", "train.csv.dvc", "incoming.dvc", ".gitignore", ".dvc/config",
          ".dvc/.gitignore", ".dvcignore"], out_dir)
    identity = [] if _git_identity(out_dir) else ["-c", "user.name=generate.py",
                                                  "-c", "user.email=generate@localhost"]
    if _run(["git", "status", "--porcelain", "--untracked-files=no"], out_dir):
        _run(["git", *identity, "commit", "-q", "-m", f"data version {tag or ''}".strip()],
             out_dir)
    if tag:
        _run(["git", "tag", "-f", tag], out_dir)
    _run([*dvc, "push", "-q"], out_dir)
    return _run(["git", "rev-parse", "HEAD"], out_dir)


def _git_identity(cwd: Path) -> bool:
    done = subprocess.run(["git", "config", "user.email"], cwd=cwd, capture_output=True,
                          text=True)
    return bool(done.stdout.strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data",
                        help="output folder (default: data/ next to this script)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    parser.add_argument("--rows-per-month", type=int, default=3000,
                        help="transactions per month (default: 3000)")
    parser.add_argument("--dvc", action="store_true",
                        help="track the output with DVC (git + DVC repository in --out, local "
                             "remote in .specloop/dvc-remote) and commit it as a data version")
    parser.add_argument("--tag", default=None,
                        help="with --dvc: tag the data version (e.g. v1) for data.rev=<tag>")
    args = parser.parse_args(argv)
    if args.tag and not args.dvc:
        parser.error("--tag needs --dvc")
    summary = generate(args.out, seed=args.seed, rows_per_month=args.rows_per_month)
    train = summary["train"]
    print(f"train: {train['rows']} rows, fraud rate {train['fraud_rate']:.2%} -> {train['path']}")
    for label, info in summary["incoming"].items():
        print(f"{label}: {info['rows']} rows, fraud rate {info['fraud_rate']:.2%} -> {info['path']}")
    if args.dvc:
        out = Path(args.out).resolve()
        remote = Path(__file__).resolve().parent / ".specloop" / "dvc-remote"
        commit = track_with_dvc(out, remote, args.tag)
        print(f"dvc: data version {args.tag or commit[:12]} committed in {out} "
              f"(remote {remote})")


if __name__ == "__main__":
    main()
