"""`vlforge report RUN_DIR... --out report.html`: a self-contained HTML data card.

One file, no network and no scripts: counts per stage and per drop/error reason, the
taxonomy distribution before and after SFT balancing, thumbnails per taxonomy leaf with
OCR / text-layer boxes and recovered chart data, training curves, lineage and versions.
Images are embedded as data URIs and charts as inline SVG.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import time
from collections import defaultdict
from typing import Any, Iterable

from pipelines.core.run_dir import DEDUP_REMOVED, RunDir
from pipelines.core.sample import Sample

THUMBS_PER_LEAF = 4
THUMB_SIZE = 220
MAX_LEAVES = 24


# -- collecting -------------------------------------------------------------------------
def classify(path: str) -> str:
    """'data' for a pipeline run, 'training' for a training run, 'eval' for an eval JSON."""
    if os.path.isfile(path) and path.endswith(".json"):
        return "eval"
    if "://" in path and RunDir(path).exists("run.json"):  # a run on an object store
        return "data"
    if os.path.exists(os.path.join(path, "run.json")):
        return "data"
    if os.path.exists(os.path.join(path, "metrics.jsonl")):
        return "training"
    raise ValueError(f"{path}: not a run directory, training run or eval JSON")


def data_section(url: str) -> str:
    run = RunDir(url)
    info = run.info()
    stats = run.stats()
    parts = [f"<h2>Data run: {_e(os.path.basename(url.rstrip('/')))}</h2>",
             f"<p class=muted>{_e(url)} · pipeline <b>{_e(info.get('pipeline'))}</b> · "
             f"{'finished' if run.complete else 'UNFINISHED'} · created {_e(info.get('created'))}</p>"]
    parts.append(_counts_table(stats))
    if stats.get("samples_by_split"):  # the held-out split: what eval reads, training never
        split = ", ".join(f"{name} {count} samples / "
                          f"{stats.get('documents_by_split', {}).get(name, 0)} documents"
                          for name, count in stats["samples_by_split"].items())
        parts.append(f"<p>Split by source document: {_e(split)}</p>")
    parts.append(_reasons_table(stats))
    removed = run.read_side_table(DEDUP_REMOVED)
    if removed:
        by_reason: dict[str, int] = defaultdict(int)
        for row in removed:
            by_reason[row["reason"]] += 1
        parts.append(f"<h3>Removed as duplicates (vlforge dedup): {len(removed)}</h3>"
                     "<table><tr><th>reason</th><th>samples</th></tr>"
                     + "".join(f"<tr><td>{_e(r)}</td><td>{n}</td></tr>"
                               for r, n in sorted(by_reason.items())) + "</table>")
    mixture = _mixture_report(url)
    if mixture:
        parts.append("<h3>Taxonomy distribution before and after balancing</h3>")
        parts.append(_svg_bars({"before": mixture.get("before_by_bucket", {}),
                                "after": mixture.get("after_by_bucket", {})}))
    elif stats.get("samples_by_taxonomy_leaf"):
        parts.append("<h3>Taxonomy distribution</h3>")
        parts.append(_svg_bars({"samples": stats["samples_by_taxonomy_leaf"]}))
    if run.complete:
        parts.append("<h3>Samples per taxonomy leaf</h3>")
        parts.append(_thumbnail_grid(run.iter_samples()))
    parts.append("<details><summary>Lineage and versions</summary>")
    parts.append(f"<pre>{_e(json.dumps({'tools': info.get('tools', {}), 'config': info.get('config', {}), 'attempts': info.get('attempts', [])}, indent=2, default=str))}</pre></details>")
    return "\n".join(parts)


def training_section(path: str) -> str:
    rows = []
    with open(os.path.join(path, "metrics.jsonl"), encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    train = [r for r in rows if "loss" in r and "step" in r]
    parts = [f"<h2>Training run: {_e(os.path.basename(path.rstrip('/')))}</h2>",
             f"<p class=muted>{_e(path)} · {len(train)} logged steps</p>"]
    if train:
        parts.append(_svg_lines("loss", [(r["step"], r["loss"]) for r in train]))
        lrs = [(r["step"], r["lr"]) for r in train if "lr" in r]
        if lrs:
            parts.append(_svg_lines("learning rate", lrs))
    parts.append(_mix_table(path))
    for name in ("result.json", "config.json", "stage.json"):
        file = os.path.join(path, name)
        if os.path.exists(file):
            with open(file, encoding="utf-8") as handle:
                parts.append(f"<details><summary>{name}</summary><pre>{_e(handle.read())}</pre></details>")
    return "\n".join(parts)


def eval_section(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        result = json.load(handle)
    return (f"<h2>Evaluation: {_e(os.path.basename(path))}</h2>"
            f"<pre>{_e(json.dumps(result, indent=2, sort_keys=True, default=str))}</pre>")


def _mix_table(path: str) -> str:
    """The run's share of each paper data category next to the paper's (`app.mix`)."""
    from pipelines.app.mix import training_mix

    mix = training_mix(path)
    if mix is None:
        return ""
    rows = "".join(f"<tr><td>{_e(c)}</td><td>{mix['measured'][c]:.1f}%</td>"
                   f"<td>{mix['paper'][c]:.1f}%</td></tr>" for c in mix["paper"])
    rows += "".join(f"<tr><td>{_e(c)} <span class=muted>(not in the paper's table)</span>"
                    f"</td><td>{v:.1f}%</td><td>-</td></tr>" for c, v in mix["other"].items())
    return (f"<h3>Data mix by paper category (stage {mix['stage']} vs the paper's "
            f"{mix['table']})</h3><p class=muted>{mix['steps']} logged steps, "
            f"{mix['language_steps']} language-only; multimodal steps split by the runs' "
            "train-split categories and mixture weights</p><table class=grid><tr>"
            f"<th>category</th><th>this run</th><th>paper</th></tr>{rows}</table>")


def eval_comparison(paths: list[str]) -> str:
    """One table of every eval JSON: the VL models' losses and the task heads' metrics
    (the CNN hybrid's next to the VL model's), each on the split it was scored on."""
    rows = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            result = json.load(handle)
        model = result.get("model", "")
        card = os.path.join(model, "vlforge_model.json")
        kind = ""
        if os.path.exists(card):
            with open(card, encoding="utf-8") as handle:
                kind = json.load(handle).get("preset") or ""
        for run, part in (result.get("runs") or {}).items():
            heads = part.get("heads") or {}
            metrics = ", ".join(f"{k} {v:.3f}" for k, v in (heads.get("metrics") or {}).items())
            loss = f"{part['loss']:.4f}" if isinstance(part.get("loss"), (int, float)) else "-"
            samples = part.get("samples", heads.get("samples", 0))
            rows.append(f"<tr><td>{_e(os.path.basename(path))}</td><td>{_e(kind)}</td>"
                        f"<td>{_e(os.path.basename(run.rstrip('/')))}</td>"
                        f"<td>{_e(result.get('split', 'all'))}</td><td>{samples}</td>"
                        f"<td>{loss}</td><td>{_e(metrics) or '-'}</td></tr>")
    if not rows:
        return ""
    return ("<h2>Models side by side</h2><table class=grid><tr><th>evaluation</th>"
            "<th>model</th><th>data run</th><th>split</th><th>samples</th><th>LM loss</th>"
            f"<th>head metrics</th></tr>{''.join(rows)}</table>")


# -- rendering pieces -------------------------------------------------------------------
def _counts_table(stats: dict[str, Any]) -> str:
    keys = ("inputs", "written", "derived", "dropped", "errors", "expanded")
    cells = "".join(f"<td><b>{stats.get(k, 0)}</b><br><span class=muted>{k}</span></td>"
                    for k in keys)
    size = stats.get("bytes", 0) / 1e6
    return f"<table class=counts><tr>{cells}<td><b>{size:.1f} MB</b><br><span class=muted>written</span></td></tr></table>"


def _reasons_table(stats: dict[str, Any]) -> str:
    rows = [("dropped", r, n) for r, n in stats.get("dropped_by_reason", {}).items()]
    rows += [("error", r, n) for r, n in stats.get("errors_by_reason", {}).items()]
    if not rows:
        return "<p>No drops, no errors.</p>"
    body = "".join(f"<tr><td class={kind}>{kind}</td><td>{_e(reason.split(':')[0])}</td>"
                   f"<td>{_e(reason.split(':', 1)[-1])}</td><td>{n}</td></tr>"
                   for kind, reason, n in rows)
    return ("<table class=grid><tr><th>outcome</th><th>stage</th><th>reason</th><th>count</th>"
            f"</tr>{body}</table>")


def _mixture_report(url: str) -> dict[str, Any] | None:
    run = RunDir(url)  # local or any fsspec URL
    for name in run.side_files("*mixture*.json"):
        report = run.read_json(name)
        if "before_by_bucket" in report:
            return report
    return None


def _thumbnail_grid(samples: Iterable[Sample]) -> str:
    by_leaf: dict[str, list[Sample]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for sample in samples:
        leaf = (sample.meta.get("taxonomy") or {}).get("leaf") or "unlabeled"
        counts[leaf] += 1
        if len(by_leaf[leaf]) < THUMBS_PER_LEAF and sample.image:
            by_leaf[leaf].append(sample)
    blocks = []
    for leaf in sorted(counts, key=lambda k: -counts[k])[:MAX_LEAVES]:
        cards = "".join(_card(s) for s in by_leaf[leaf]) or "<p class=muted>text only</p>"
        blocks.append(f"<div class=leaf><h4>{_e(leaf)} <span class=muted>({counts[leaf]})</span>"
                      f"</h4><div class=cards>{cards}</div></div>")
    return "\n".join(blocks) or "<p>No samples.</p>"


def _card(sample: Sample) -> str:
    thumb = _thumbnail(sample)
    caption = _e((sample.text or sample.markdown or "")[:140])
    charts = (sample.meta.get("chart") or {}).get("charts") or []
    chart_html = "".join(_chart_table(c) for c in charts[:2])
    ocr = sample.meta.get("ocr") or {}
    ocr_note = (f"<br><span class=muted>OCR {_e(ocr.get('backend'))}: "
                f"{len(ocr.get('lines', []))} lines</span>" if ocr else "")
    return (f"<figure><img alt='{_e(sample.source)} sample' src='{thumb}'>"
            f"<figcaption><span class=muted>{_e(sample.source)} · {_e(sample.locator[:60])}"
            f"</span>{ocr_note}<br>{caption}{chart_html}</figcaption></figure>")


def _thumbnail(sample: Sample) -> str:
    """A JPEG data URI of the image with text-layer boxes (blue) and OCR boxes (red)."""
    from PIL import Image, ImageDraw

    with Image.open(io.BytesIO(sample.image)) as image:
        image = image.convert("RGB")
        width, height = image.size
        draw = ImageDraw.Draw(image)
        truth = (sample.meta.get("pdf") or sample.meta.get("web") or {}).get("lines") or []
        ocr = (sample.meta.get("ocr") or {}).get("lines") or []
        for lines, colour in ((truth, (40, 90, 220)), (ocr, (220, 40, 40))):
            for line in lines[:400]:
                box = line.get("box") if isinstance(line, dict) else None
                if box and len(box) == 4:
                    x0, y0, x1, y1 = box
                    draw.rectangle([x0 * width, y0 * height, x1 * width, y1 * height],
                                   outline=colour, width=max(1, width // 400))
        image.thumbnail((THUMB_SIZE * 2, THUMB_SIZE * 2))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _chart_table(chart: dict[str, Any]) -> str:
    rows = []
    for series in (chart.get("series") or [])[:3]:
        points = series.get("points") or []
        values = ", ".join(f"{_e(p.get('x'))}: {_fmt(p.get('y'))}" for p in points[:8])
        rows.append(f"<tr><td>{_e(series.get('name') or '')}</td><td>{values}</td></tr>")
    status = "recovered" if chart.get("recovered", True) else "not recovered"
    return (f"<table class=chart><tr><th colspan=2>{_e(chart.get('type'))} chart "
            f"({_e(chart.get('source'))}, {status})</th></tr>{''.join(rows)}</table>")


def _svg_bars(series: dict[str, dict[str, int]]) -> str:
    """Grouped horizontal bars of shares per category, as inline SVG (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    categories = sorted({k for counts in series.values() for k in counts})[:40]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(categories) + 1.2))
    height = 0.8 / max(1, len(series))
    for index, (name, counts) in enumerate(series.items()):
        total = sum(counts.values()) or 1
        ax.barh([i + index * height for i in range(len(categories))],
                [counts.get(c, 0) / total for c in categories], height=height, label=name)
    ax.set_yticks([i + height * (len(series) - 1) / 2 for i in range(len(categories))])
    ax.set_yticklabels(categories, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share of samples")
    ax.legend(fontsize=8)
    return _svg(fig)


def _svg_lines(name: str, points: list[tuple[float, float]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.plot([p[0] for p in points], [p[1] for p in points], lw=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
    return _svg(fig)


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.tight_layout()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    text = buffer.getvalue()
    return "<div class=plot>" + text[text.index("<svg"):] + "</div>"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else _e(value)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#1d2330}
h1{margin-bottom:0} h2{border-bottom:2px solid #dde3ee;padding-bottom:4px;margin-top:40px}
.muted{color:#6b7385;font-size:12px} pre{background:#f5f7fb;padding:10px;overflow:auto;font-size:12px}
table.counts td{padding:8px 18px;text-align:center;background:#f5f7fb}
table.grid,table.chart{border-collapse:collapse;margin:8px 0} .grid td,.grid th{border:1px solid #dde3ee;padding:3px 8px}
.chart td,.chart th{border:1px solid #e4e8f0;padding:2px 6px;font-size:11px}
td.error{color:#b3261e} td.dropped{color:#8a6d00}
.cards{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0;width:%dpx;font-size:12px}
figure img{width:100%%;border:1px solid #dde3ee} figcaption{overflow-wrap:anywhere} .leaf h4{margin:18px 0 6px}
.plot svg{max-width:100%%;height:auto}
""" % THUMB_SIZE


def build_report(paths: list[str], title: str = "vlforge data card") -> str:
    sections = []
    evals = [path for path in paths if classify(path) == "eval"]
    if len(evals) > 1:
        sections.append(eval_comparison(evals))
    for path in paths:
        kind = classify(path)
        sections.append({"data": data_section, "training": training_section,
                         "eval": eval_section}[kind](path))
    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>"
            f"<p class=muted>generated {generated} from {len(paths)} input(s)</p>"
            + "\n".join(sections) + "</body></html>")
