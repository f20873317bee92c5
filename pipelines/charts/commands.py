"""``vlforge chart FILE [--page N] [--json]``: recover the data behind the charts in a file.

FILE may be an SVG (matplotlib, plotly, D3 exports), a PDF (or another PyMuPDF document:
each page's vector drawings and text spans are read), an HTML page (rendered in Chromium
so that script-drawn charts such as plotly.js exist as SVG), or an image (raster charts
are detected and their labels read by OCR, but values are never guessed: they come back
with ``"recovered": false``). Prints a table per chart, or with ``--json``:
``{"charts": [{"type", "title", "x_label", "y_label", "series": [{"name", "points":
[{"x", "y"}]}], "source", "recovered", "box", "page"}]}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

log = logging.getLogger(__name__)

SVG_SUFFIXES = {".svg"}
HTML_SUFFIXES = {".html", ".htm"}
DOC_SUFFIXES = {".pdf", ".epub", ".xps", ".oxps", ".cbz", ".fb2"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def add_chart_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n", 1)[1] if __doc__ else None
    parser.add_argument("file", help="an .svg, .pdf, .html or image file")
    parser.add_argument("--page", type=int, default=None,
                        help="PDF page to read, 1-based (default: every page)")
    parser.add_argument("--no-ocr", action="store_true",
                        help="images: skip OCR (raster detection then finds nothing)")
    parser.add_argument("--json", action="store_true", help="print the charts as JSON")


def charts_in_file(path: Path, page: int | None = None, ocr: bool = True) -> list[dict[str, Any]]:
    """Every chart recovered from one file (see the module docstring for the shapes)."""
    suffix = path.suffix.lower()
    if suffix in SVG_SUFFIXES:
        from pipelines.charts.recognize import read_charts
        from pipelines.charts.svg import parse_svg

        return [{**c, "source": "svg", "box": [0.0, 0.0, 1.0, 1.0]}
                for c in read_charts(parse_svg(path.read_bytes()))]
    if suffix in HTML_SUFFIXES:
        return _charts_in_html(path)
    if suffix in DOC_SUFFIXES:
        return _charts_in_document(path, page)
    if suffix in IMAGE_SUFFIXES:
        from pipelines.charts.raster import RasterChartDetector

        detector = RasterChartDetector(ocr=ocr)
        detector.open()
        found = detector.detect(path.read_bytes())
        return [found] if found else []
    raise ValueError(f"{path}: unsupported file type {suffix!r} (svg, pdf, html or an image)")


def _charts_in_document(path: Path, page: int | None) -> list[dict[str, Any]]:
    import pymupdf

    from pipelines.charts.stage import charts_from_pdf_file

    try:
        with pymupdf.open(str(path)) as doc:
            count = doc.page_count
    except Exception as exc:  # PyMuPDF raises its own types for broken files
        raise ValueError(f"{path}: cannot open as a document ({exc})") from exc
    if page is not None and not 1 <= page <= count:
        raise ValueError(f"--page {page}: {path} has {count} page(s), counted from 1")
    indices = [page - 1] if page is not None else list(range(count))
    charts = []
    for index in tqdm(indices, desc="chart", unit="page", disable=len(indices) < 5 or None,
                      file=sys.stderr):
        try:
            found = charts_from_pdf_file(str(path), index)
        except Exception as exc:  # one broken page must not hide the others' charts
            log.warning("%s page %d: %s: %s", path, index + 1, type(exc).__name__, exc)
            if page is not None:
                raise ValueError(f"{path} page {page}: {exc}") from exc
            continue
        charts += [{**chart, "page": index} for chart in found]
    return charts


def _charts_in_html(path: Path) -> list[dict[str, Any]]:
    from pipelines.charts.recognize import read_charts
    from pipelines.charts.render_html import SvgRenderer
    from pipelines.charts.svg import scenes_from_svgs

    with SvgRenderer() as renderer:
        svgs = renderer.svgs(path.read_text(encoding="utf-8", errors="replace"))
    charts = []
    for box, scene in scenes_from_svgs(svgs):
        for chart in read_charts(scene):
            charts.append({**chart, "source": "svg", "page_box": [round(v, 1) for v in box]})
    return charts


def format_chart(chart: dict[str, Any]) -> str:
    """A short human-readable rendering of one chart: header line + one line per series."""
    where = f" page {chart['page'] + 1}" if "page" in chart else ""
    head = f"{chart['type']} chart{where} ({chart.get('source')})"
    if chart.get("title"):
        head += f": {chart['title']}"
    lines = [head]
    if chart.get("x_label") or chart.get("y_label"):
        lines.append(f"  x: {chart.get('x_label') or '-'}   y: {chart.get('y_label') or '-'}"
                     f"   scales: {chart.get('x_scale')}/{chart.get('y_scale')}")
    if not chart.get("recovered"):
        lines.append("  data not recovered" + (f" ({chart['reason']})" if chart.get("reason") else ""))
    for series in chart.get("series", []):
        points = ", ".join(f"{p['x']}={p['y']:g}" if isinstance(p["y"], (int, float))
                           else f"{p['x']}={p['y']}" for p in series["points"])
        lines.append(f"  {series.get('name') or 'series'}: {points}")
    return "\n".join(lines)


def chart_command(args: argparse.Namespace, extra: list[str]) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    charts = charts_in_file(path, args.page, ocr=not args.no_ocr)
    if args.json:
        print(json.dumps({"file": str(path), "charts": charts}, ensure_ascii=False, indent=1))
    elif not charts:
        print(f"{path}: no chart found")
    else:
        print("\n\n".join(format_chart(c) for c in charts))
    return 0


def add_charts_arguments(parser: argparse.ArgumentParser) -> None:
    """``vlforge charts synth --n N --out RUN``: the synthetic chart pipeline."""
    from pipelines.charts import synth_pipeline
    from pipelines.charts.synth_config import SynthConfig
    from pipelines.charts.synthetic import CHART_TYPES
    from pipelines.core.cli_options import add_run_arguments

    parser.description = "Synthetic charts (run `vlforge charts synth --help`)."
    sub = parser.add_subparsers(dest="action", required=True)
    synth = sub.add_parser("synth", help="draw N synthetic charts with their code and table",
                           description=synth_pipeline.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    synth.add_argument("--n", type=int, required=True, help="number of charts to draw")
    synth.add_argument("--families", nargs="+", default=list(SynthConfig().families),
                       choices=("matplotlib", "plotly"), help="plotting libraries, in turn")
    synth.add_argument("--chart-types", nargs="+", default=list(CHART_TYPES),
                       choices=CHART_TYPES, help="chart types to draw (default: all)")
    synth.add_argument("--seed", type=int, default=0, help="seed of the chart specs")
    synth.add_argument("--dpi", type=int, default=SynthConfig.dpi, help="matplotlib dpi")
    add_run_arguments(synth)


def charts_command(args: argparse.Namespace, extra: list[str]) -> int:
    from pipelines.charts.synth_config import SynthConfig
    from pipelines.charts.synth_pipeline import PIPELINE, synth_refs
    from pipelines.core.cli_options import print_run_summary, run_settings
    from pipelines.core.config import validate_all
    from pipelines.core.runner import run_pipeline

    config = SynthConfig(families=list(args.families), chart_types=list(args.chart_types),
                         seed=args.seed, dpi=args.dpi)
    settings = run_settings(args)
    validate_all(config, settings)
    if args.n < 1:
        raise ValueError(f"--n must be >= 1 (got {args.n})")
    stats = run_pipeline(PIPELINE, synth_refs(args.n, config), config, args.out, extra,
                         task_size=settings.task_size, overwrite=args.overwrite,
                         validation_fraction=settings.validation_fraction,
                         **settings.shard_bounds)
    print_run_summary(stats, args.out, args.json)
    return 0
