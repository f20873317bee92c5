"""Settings of the "pdf" pipeline (`vlforge pdf`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipelines.core.config import PostStageConfig
from pipelines.pdf.settings import PdfRenderSettings

# `default_renderers` stops here: one Beam process still turns every page into records and
# writes them (the sink is serial), so beyond this many renderers a machine wants Beam
# workers (or more tasks in parallel) rather than more renderers behind one sink.
MAX_DEFAULT_RENDERERS = 8


@dataclass
class PdfConfig(PostStageConfig):
    """Documents → page, figure and table samples, then the optional post stages."""

    LEGACY_KEYS = ("pymupdf_version",)  # once recorded here; now in each page's meta

    render: PdfRenderSettings = field(default_factory=PdfRenderSettings)
    """How pages are rendered and what is extracted (page size, markdown, figures, tables,
    interleaved documents and caption pairs with their limits; see
    `pipelines.pdf.settings.PdfRenderSettings`)."""
    page_timeout: float = 60.0
    """Seconds to open a document or render one page before the page becomes an error."""
    doc_timeout: float = 900.0
    """Seconds for a whole document."""
    max_memory_mb: int = 4096
    """Address-space cap of the isolated renderer process."""
    near_duplicate_bits: int = 10
    """Perceptual-hash bits (of 256) within which two pages are near duplicates; -1
    disables the filter."""
    drop_blank: bool = True
    """Drop blank pages (with a reason) instead of writing them."""
    renderers: int = 1
    """Renderer child processes per pipeline worker, i.e. documents rendered at once by
    one worker (records still leave in input order). On one machine, one Beam worker
    (the in-process DirectRunner) with N renderers uses N cores without N Beam worker
    processes: ``bench/pdf_throughput.py`` measures both layouts."""
    overlap_tasks: bool | None = None
    """Start the next task's documents while a task's last ones finish, instead of letting
    renderers idle until every record of the task has passed (records still leave in input
    order, each task's before its end marker). A bundle's last task's records then leave
    from ``finish_bundle``, which Beam's Dask runner discards: None (the default) is on
    where the runner passes those on (`pipelines.core.engines.passes_bundle_end_records`,
    the DirectRunner) and off elsewhere, decided at each run (`pipelines.core.runner.
    for_runner`); True is turned off on a runner that would lose records."""

    def problems(self) -> list[str]:
        from pipelines.pdf.pipeline import NearDuplicateIndex  # (it imports this module)

        found = super().problems()
        for name in ("page_timeout", "doc_timeout"):
            if not getattr(self, name) > 0:
                found.append(f"{name} must be > 0 seconds (got {getattr(self, name)})")
        if self.renderers < 1:
            found.append(f"renderers must be >= 1 (got {self.renderers})")
        if self.max_memory_mb < 64:
            found.append(f"max_memory_mb must be >= 64 (got {self.max_memory_mb})")
        if not -1 <= self.near_duplicate_bits < NearDuplicateIndex.BANDS:
            found.append("near_duplicate_bits must be -1 (off) or within "
                         f"0..{NearDuplicateIndex.BANDS - 1} (got {self.near_duplicate_bits})")
        for name in ("target", "max_pixels", "min_side", "max_figures", "min_figure_side",
                     "max_document_images", "max_chapter_pages"):
            if getattr(self.render, name) < 1:
                found.append(f"render.{name} must be >= 1 (got {getattr(self.render, name)})")
        if self.render.target > 0 and self.render.max_pixels < self.render.target:
            found.append(f"render.max_pixels ({self.render.max_pixels}) must be at least "
                         f"render.target ({self.render.target})")
        return found

    def start_ahead(self, beam_args: Sequence[str]) -> None:
        """One renderer child started now and parked for this process's render stage (a
        child's start is ~0.3 CPU-s of imports), where that stage runs in this process;
        none where one is parked already (`vlforge pdf` starts it before Beam's import)."""
        if not in_process_runner(beam_args):
            return
        from pipelines.pdf.isolation import idle_children, start_ahead

        if not idle_children(self.max_memory_mb).procs:
            start_ahead(1, self.max_memory_mb)


def default_renderers(beam_args: Sequence[str]) -> int:
    """`vlforge pdf`'s ``--renderers`` when not given: the cores this process may use
    (at most `MAX_DEFAULT_RENDERERS`) when the whole pipeline runs in this one process
    (the DirectRunner with one worker: a laptop, one worker node), else 1 (each of
    several Beam workers, or an engine's workers, gets its own renderer).

    On 2 cores, one Beam worker with 2 renderers beat 2 Beam workers with 1 each on
    pages/s, CPU and memory (``bench/pdf_throughput.py --layouts renderers,beam``)."""
    if not in_process_runner(beam_args):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))  # what this process may use (cgroups, taskset)
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_RENDERERS))


def in_process_runner(beam_args: Sequence[str]) -> bool:
    """Whether the Beam flags run the whole pipeline in this process (the DirectRunner
    with one worker), where ``renderers`` defaults to one per core in `vlforge pdf`."""
    from pipelines.core.engines import flag_value, runner_name

    if runner_name(beam_args) != "DirectRunner":
        return False
    workers = flag_value(beam_args, "--direct_num_workers")  # "0" is Beam's "one per core"
    return workers is None or int(workers) == 1
