"""Chart data recovery accuracy on synthetic charts with exact ground truth.

For each source (matplotlib SVG with text as glyph paths, matplotlib SVG with <text>,
matplotlib PDF, plotly.js SVG rendered in Chromium) and chart type, draws N random
charts, recovers them with the vector reader and prints, per cell: charts recovered,
points matched, and the share of values within 2% relative error (the goal: ≥ 90% on
bar and line charts). The baseline column is "values recovered at all" so a reader that
finds marks but maps them wrongly is visible side by side with one that finds nothing.

    .venv/bin/python bench/chart_accuracy.py --n 20 [--sources mpl-svg,mpl-pdf,plotly]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.charts.recognize import read_charts  # noqa: E402
from pipelines.charts.synthetic import CHART_TYPES, make_spec, render  # noqa: E402

SOURCES = ("mpl-svg", "mpl-svg-text", "mpl-pdf", "plotly")
PLOTLY_TYPES = ("bar", "horizontal_bar", "grouped_bar", "stacked_bar", "line", "scatter", "pie")


def recover_matplotlib(spec, source: str) -> list[dict]:
    if source == "mpl-pdf":
        import pymupdf

        from pipelines.charts.pdf_vector import scenes_from_page

        doc = pymupdf.open(stream=render(spec, "pdf"), filetype="pdf")
        return [c for _, scene in scenes_from_page(doc[0]) for c in read_charts(scene)]
    from pipelines.charts.svg import parse_svg

    return read_charts(parse_svg(render(spec, "svg", svg_text=source == "mpl-svg-text")))


def plotly_figure(spec):
    """The same data drawn by plotly.js (a library this project did not write)."""
    import plotly.graph_objects as go

    kind = spec["type"]
    traces = []
    for s in spec["series"]:
        xs = [p["x"] for p in s["points"]]
        ys = [p["y"] for p in s["points"]]
        name = s["name"] or "value"
        if kind in ("bar", "grouped_bar", "stacked_bar"):
            traces.append(go.Bar(x=xs, y=ys, name=name))
        elif kind == "horizontal_bar":
            traces.append(go.Bar(x=ys, y=xs, name=name, orientation="h"))
        elif kind == "line":
            traces.append(go.Scatter(x=xs, y=ys, name=name, mode="lines+markers"))
        elif kind == "scatter":
            traces.append(go.Scatter(x=xs, y=ys, name=name, mode="markers"))
        elif kind == "pie":
            traces.append(go.Pie(labels=xs, values=ys, name=name, sort=False))
    fig = go.Figure(traces)
    fig.update_layout(title=spec["title"], xaxis_title=spec["x_label"],
                      yaxis_title=spec["y_label"], width=700, height=450,
                      barmode="stack" if kind == "stacked_bar" else "group",
                      showlegend=len(spec["series"]) > 1 or kind == "pie")
    if spec.get("log_y"):
        fig.update_yaxes(type="log")
    return fig


def match_accuracy(spec, charts: list[dict]) -> tuple[int, int, int]:
    """(values in truth, values recovered, values within 2% relative error)."""
    truth = spec["series"]
    total = sum(len(s["points"]) for s in truth)
    if not charts or not charts[0]["series"]:
        return total, 0, 0
    got = charts[0]["series"]
    if spec["type"] == "pie":
        values = [p["y"] for p in truth[0]["points"]]
        truth = [{"points": [{"x": p["x"], "y": 100 * p["y"] / sum(values)}
                             for p in truth[0]["points"]]}]
    found = good = 0
    used: set[int] = set()
    for s in truth:
        best = None
        for index, g in enumerate(got):
            if index in used:
                continue
            pairs = _pair(s["points"], g["points"])
            score = sum(_ok(t, r) for t, r in pairs)
            if best is None or (score, len(pairs)) > (best[0], len(best[2])):
                best = (score, index, pairs)
        if best is None:
            continue
        used.add(best[1])
        found += len(best[2])
        good += best[0]
    return total, found, good


def _x_key(x) -> str:
    """Category labels that are numbers (years) may come back as numbers: compare as such."""
    try:
        return f"{float(str(x).replace(',', '')):g}"
    except ValueError:
        return str(x).strip()


def _pair(truth_pts, got_pts):
    pairs = []
    numeric = all(isinstance(p["x"], (int, float)) for p in truth_pts)
    if numeric:
        xs = [p["x"] for p in truth_pts]
        tol = 0.01 * ((max(xs) - min(xs)) or 1)
        pool = []
        for g in got_pts:
            try:
                pool.append({"x": float(str(g["x"]).replace(",", "")), "y": g["y"]})
            except ValueError:
                continue
        for t in truth_pts:
            near = [g for g in pool if abs(g["x"] - t["x"]) <= tol]
            if near:
                pairs.append((t["y"], min(near, key=lambda g: abs(g["y"] - t["y"]))["y"]))
        return pairs
    by_x = defaultdict(list)
    for g in got_pts:
        by_x[_x_key(g["x"])].append(g["y"])
    for t in truth_pts:
        cands = by_x.get(_x_key(t["x"]))
        if cands:
            pairs.append((t["y"], min(cands, key=lambda v: abs(v - t["y"]))))
    return pairs


def _ok(truth: float, got) -> bool:
    if not isinstance(got, (int, float)):
        return False
    if truth == 0:
        return abs(got) < 1e-9
    return abs(got - truth) / abs(truth) <= 0.02


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20, help="charts per source and type")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument("--types", default=",".join(CHART_TYPES))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--failures", type=int, default=0, help="print this many failing specs")
    args = parser.parse_args(argv)
    sources = args.sources.split(",")
    types = args.types.split(",")
    rows = []
    renderer = None
    failures = []
    start = time.time()
    try:
        for source in sources:
            if source == "plotly":
                from pipelines.charts.render_html import SvgRenderer
                from pipelines.charts.svg import scenes_from_svgs

                renderer = SvgRenderer().open()
            for kind in types:
                if source == "plotly" and kind not in PLOTLY_TYPES:
                    continue
                rng = random.Random(f"{args.seed}-{kind}")
                cell = {"source": source, "type": kind, "charts": 0, "recovered": 0,
                        "values": 0, "found": 0, "within_2pct": 0}
                for _ in range(args.n):
                    spec = make_spec(rng, kind)
                    if source == "plotly":
                        svgs = renderer.plotly_svgs(plotly_figure(spec).to_json())
                        charts = [c for _, sc in scenes_from_svgs(svgs) for c in read_charts(sc)]
                    else:
                        charts = recover_matplotlib(spec, source)
                    total, found, good = match_accuracy(spec, charts)
                    cell["charts"] += 1
                    cell["recovered"] += bool(charts and charts[0]["recovered"])
                    cell["values"] += total
                    cell["found"] += found
                    cell["within_2pct"] += good
                    if good < total and len(failures) < args.failures:
                        failures.append((source, spec, charts))
                rows.append(cell)
    finally:
        if renderer is not None:
            renderer.close()
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"{'source':<13} {'type':<15} {'charts':>6} {'recovered':>9} "
              f"{'values':>6} {'found':>7} {'within 2%':>9}")
        for r in rows:
            found = r["found"] / max(1, r["values"])
            acc = r["within_2pct"] / max(1, r["values"])
            print(f"{r['source']:<13} {r['type']:<15} {r['charts']:>6} {r['recovered']:>9} "
                  f"{r['values']:>6} {found:>7.1%} {acc:>9.1%}")
        print(f"({time.time() - start:.0f} s; 'found' = values located at all, the baseline "
              f"for 'within 2%' = values within 2% relative error of the truth)")
    for source, spec, charts in failures:
        print("FAIL", source, json.dumps({k: spec[k] for k in ("type", "style", "log_y", "series")})[:600])
        print("  GOT", json.dumps(charts)[:600])
    return 0


if __name__ == "__main__":
    sys.exit(main())
