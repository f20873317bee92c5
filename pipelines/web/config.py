"""Settings of the "web" pipeline (`vlforge crawl`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from pipelines.core.config import PostStageConfig
from pipelines.web.browser import RenderSettings
from pipelines.web.interleave import DerivedSettings


@dataclass
class WebConfig(PostStageConfig):
    """URLs → page screenshots with their text and DOM, then the optional post stages."""

    render: RenderSettings = field(default_factory=RenderSettings)
    """How pages are rendered and how politely (viewport, tiles, timeouts, per-host delay
    and concurrency, private addresses; see `pipelines.web.browser.RenderSettings`)."""
    derived: DerivedSettings = field(default_factory=DerivedSettings)
    """The samples derived from each page besides its tiles: an interleaved image-text
    document, caption pairs, a screenshot → HTML code pair, and their limits (images per
    document, smallest image side, HTML characters; see
    `pipelines.web.interleave.DerivedSettings`)."""
    overlap_tasks: bool | None = None
    """Whether the crawl stage renders the next task's pages while a task's last ones
    finish (its end marker waits in its place; each task's records still leave before its
    end). A worker's last task of a bundle then leaves from ``finish_bundle``, whose records
    Beam's Dask runner discards: None (the default) is on where the runner passes those on
    (`pipelines.core.engines.passes_bundle_end_records`, the DirectRunner) and off
    elsewhere, decided at each run (`pipelines.core.runner.for_runner`); True is turned off
    on a runner that would lose records. Off, every task end drained all pages in flight:
    ~1-2 s at falling concurrency per 8-page task."""
    seen_path: str | None = None
    """Where earlier crawl rounds recorded the URLs and page hashes already written (set
    by `crawl` to ``RUN/web_seen.json``; deduplicates across rounds and retries)."""

    def problems(self) -> list[str]:
        found = super().problems() + self.derived.problems()
        render = self.render
        for name in ("viewport_width", "viewport_height", "tile", "host_concurrency",
                     "concurrency", "pages_per_context"):
            if getattr(render, name) < 1:
                found.append(f"render.{name} must be >= 1 (got {getattr(render, name)})")
        for name in ("max_tiles", "retries", "host_delay_s", "backoff_s", "load_grace_s"):
            if getattr(render, name) < 0:
                found.append(f"render.{name} must be >= 0 (got {getattr(render, name)})")
        for name in ("nav_timeout_s", "total_timeout_s"):
            if not getattr(render, name) > 0:
                found.append(f"render.{name} must be > 0 seconds (got {getattr(render, name)})")
        allow = render.allow_private
        if isinstance(allow, (list, tuple)):
            for address in allow:
                try:
                    ipaddress.ip_network(address, strict=False)
                except (TypeError, ValueError):
                    found.append(f"render.allow_private: {address!r} is not an IP address "
                                 "or network (--allow-address)")
        elif not isinstance(allow, bool):
            found.append("render.allow_private must be true, false or a list of addresses "
                         f"(got {allow!r})")
        return found
