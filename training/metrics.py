"""Training metrics: one JSONL row per logged step, TensorBoard scalars, loss/LR plots.

``RUN/metrics.jsonl`` is the source of truth (a resumed run truncates rows past its
checkpoint step so the file reads as one uninterrupted run); ``RUN/tensorboard/`` mirrors
it for `tensorboard --logdir RUN`; ``RUN/loss.png`` and ``RUN/lr.png`` are redrawn at
every checkpoint and at the end.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """Appends metric rows to JSONL and TensorBoard (rank 0 only writes)."""

    def __init__(self, run_dir: str, *, enabled: bool = True, resume_step: int = 0):
        self.run_dir, self.enabled = run_dir, enabled
        self.path = os.path.join(run_dir, METRICS_FILE)
        self._tb = None
        if not enabled:
            return
        os.makedirs(run_dir, exist_ok=True)
        kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= resume_step]
        with open(self.path, "w", encoding="utf-8") as handle:  # drop rows past the checkpoint
            handle.writelines(json.dumps(r, sort_keys=True) + "\n" for r in kept)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(os.path.join(run_dir, "tensorboard"),
                                     purge_step=resume_step + 1 if resume_step else None)
        except ImportError:  # tensorboard is a dependency, but metrics must not need it
            log.warning("tensorboard not installed: metrics go to %s only", self.path)

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
        if self._tb is not None:
            for name, value in row.items():
                if name != "step" and isinstance(value, (int, float)):
                    self._tb.add_scalar(name, value, row["step"])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(run_dir: str) -> list[dict[str, Any]]:
    path = os.path.join(run_dir, METRICS_FILE)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def plot_metrics(run_dir: str) -> list[str]:
    """Draw loss.png (per modality) and lr.png from metrics.jsonl; returns the paths."""
    rows = read_metrics(run_dir)
    if not rows:
        return []
    import matplotlib

    matplotlib.use("Agg")  # headless: training machines have no display
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], color="0.7", lw=1,
            label="all steps")
    for modality, color in (("language", "tab:blue"), ("multimodal", "tab:orange")):
        part = [r for r in rows if r.get("modality") == modality]
        if part:
            ax.plot([r["step"] for r in part], [r["loss"] for r in part], ".", color=color,
                    label=modality)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(os.path.basename(os.path.abspath(run_dir)))
    ax.legend()
    fig.tight_layout()
    written.append(os.path.join(run_dir, "loss.png"))
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot([r["step"] for r in rows], [r["lr"] for r in rows])
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    fig.tight_layout()
    written.append(os.path.join(run_dir, "lr.png"))
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    return written
