"""What the PDF renderer does, as plain values (sent to the isolated renderer process).

Kept apart from `pipelines.pdf.render` so that the pipeline's Beam workers, which only
talk to the renderer, never import PyMuPDF (and the ONNX runtime its layout package loads).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipelines.core.text import MAX_DOCUMENT_IMAGES


@dataclass(frozen=True)
class PdfRenderSettings:
    """How PDF pages are rendered and what is extracted (plain values: sent to the
    renderer). Named apart from the web pipeline's browser settings."""

    target: int = 1024  # long side of the page image in px (DeepSeek-VL's hi-res branch)
    max_pixels: int = 4096 * 4096  # pixel cap: the scale is lowered so a page never exceeds it
    min_side: int = 16  # pages whose short side would be below this are dropped (degenerate)
    max_image_pixels: int = 150_000_000  # an embedded image larger than this is a bomb: drop page
    max_drawings: int = 3000  # vector paths kept in meta per page (flagged when truncated)
    markdown: bool = True  # page markdown (headings, lists, tables) from the extracted text
    figures: bool = True  # figure samples (embedded images, vector graphics)
    tables: bool = True  # table samples (markdown + CSV)
    min_figure_fraction: float = 0.01  # a figure covers at least this share of the page
    max_figures: int = 20  # per page
    # Vector paths clustered into figure regions per page (the largest first when there
    # are more); recorded in meta as clustered_paths / cluster_cap.
    max_cluster_paths: int = 20000
    # pymupdf's layout model (an ONNX network) to gate and add tables. Off by default: on
    # the shared corpus it made the table search 5x dearer (15 vs 3 CPU-s on the 40 pages
    # with ruling lines) and changed the tables of 12 of them (19 tables -> 8).
    layout_model: bool = False
    # Interleaved documents and caption pairs (`pipelines.pdf.interleave`): a figure's
    # crop with a short side under min_figure_side px is dropped as too small; a document
    # holds at most max_document_images images (the collator's per-sample limit, six
    # 576-token blocks in 4096 tokens) and a book chapter's at most max_chapter_pages pages.
    interleaved: bool = True
    captions: bool = True
    min_figure_side: int = 32
    max_document_images: int = MAX_DOCUMENT_IMAGES
    max_chapter_pages: int = 32

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
