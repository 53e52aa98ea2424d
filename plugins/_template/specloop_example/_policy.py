"""The ``sized_drift`` policy (imported only when a spec uses it)."""

from __future__ import annotations

from typing import Any

from specloop import Decision, Observation


class SizedDrift:
    """Retrains when at least ``share`` of the features drifted in a batch of at least
    ``min_rows`` rows.

    Args:
        config: A :class:`specloop_example.SizedDriftConf`.
    """

    def __init__(self, config: Any) -> None:
        self.config = config  # constructors only store config: no I/O, cheap, picklable

    def decide(self, obs: Observation) -> Decision:
        """Decide on the monitor's report for one batch.

        Args:
            obs: What the loop observed for the batch.

        Returns:
            The decision, with a one-line reason.
        """
        c = self.config
        if obs.drift is None:
            return Decision(False, "no drift report (declare a monitor)")
        if obs.rows < c.min_rows:
            return Decision(False, f"batch of {obs.rows} rows is below min_rows={c.min_rows}")
        share = float(obs.drift["drift_share"])
        if share >= c.share:
            drifted = [col["column"] for col in obs.drift["columns"] if col["drifted"]]
            return Decision(True, f"sized_drift: {share:.0%} of features drifted "
                                  f"(>= {c.share:.0%}) in {obs.rows} rows: "
                                  + ", ".join(drifted[:4]), {"drift_share": share})
        return Decision(False, f"drift {share:.0%} < {c.share:.0%}", {"drift_share": share})
