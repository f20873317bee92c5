"""Which handed-off runs feed which training stage."""

from __future__ import annotations

from pipelines.core.run_dir import RunDir


def split_runs(runs: list[str]) -> dict[str, list[str]]:
    """SFT runs (pipeline "sft") feed stage 3; every other finished run feeds stages 1-2."""
    plan: dict[str, list[str]] = {"pretrain": [], "sft": []}
    for url in runs:
        pipeline = RunDir(url).require_complete().pipeline
        plan["sft" if pipeline == "sft" else "pretrain"].append(url)
    if not plan["pretrain"]:
        raise ValueError("no pretraining runs among the handed-off runs")
    if not plan["sft"]:
        plan["sft"] = list(plan["pretrain"])  # captions/OCR pairs still train stage 3
    return plan
