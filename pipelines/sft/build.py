"""``vlforge sft build``: scan source runs, sample to the mixture, run the "sft" pipeline,
and write the mixture report (before/after counts and a plot) into the run."""

from __future__ import annotations

import io
import logging
from collections import Counter
from typing import Any, Mapping

from pipelines.core.config import RunSettings, validate_all
from pipelines.core.runner import run_pipeline
from pipelines.sft.config import SftConfig

log = logging.getLogger(__name__)

REPORT_JSON = "sft_mixture.json"
REPORT_PNG = "sft_mixture.png"


def build_sft(runs: list[str], out: str, mixture_path: str | None = None,
              beam_args: list[str] = (), overrides: dict[str, Any] | None = None,
              config: SftConfig | Mapping[str, Any] | None = None, progress: bool = False,
              **run_options: Any) -> dict[str, Any]:
    """Scan, sample, run and report; returns {"stats", "mixture"} (the report).

    `run_options` are `run_pipeline`'s (task_size, overwrite, shard bounds); the settings
    are checked before any source is scanned.
    """
    import dataclasses

    config = config if isinstance(config, SftConfig) else SftConfig.from_dict(config)
    validate_all(config, RunSettings(**{k: v for k, v in run_options.items()
                                        if k in RunSettings.__dataclass_fields__}))

    from pipelines.core.run_dir import RunDir
    from pipelines.sft.mixture import (
        DEFAULT_MIXTURE,
        load_mixture,
        load_tree,
        mixture_report,
        plot_mixture,
        select,
    )
    from pipelines.sft.pipeline import plan_refs, scan_sources

    tree = load_tree()
    mixture = load_mixture(mixture_path or DEFAULT_MIXTURE, tree)
    mixture = dataclasses.replace(mixture, **{k: v for k, v in (overrides or {}).items()
                                              if v is not None})
    candidates = scan_sources(runs, progress=progress)
    selection = select(candidates, mixture, tree)
    refs = plan_refs(selection.chosen)
    if not refs:
        raise ValueError(f"nothing to build: {len(candidates)} candidate(s) in {len(runs)} run(s), "
                         f"none in a bucket of mixture {mixture.name!r} with weight > 0")
    # A build labels nothing itself: conversations carry their template's leaf.
    run_config = dataclasses.replace(config, label=False, mixture=mixture.path,
                                     mixture_name=mixture.name, sources=list(runs))
    stats = run_pipeline("sft", refs, run_config, out, beam_args, **run_options)
    run = RunDir(out)
    written = Counter(row or "unlabeled" for row in
                      run.manifest(["taxonomy_leaf"]).column("taxonomy_leaf").to_pylist())
    report = mixture_report(selection, mixture, written)
    run.write_json(report, REPORT_JSON)
    buffer = io.BytesIO()
    plot_mixture(report, buffer)
    run.write_bytes(buffer.getvalue(), REPORT_PNG)
    return {"stats": stats, "mixture": report}
