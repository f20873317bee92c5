"""Chart data recovery accuracy: charts drawn by the real charting libraries, read back.

One run prints one table: a row per chart kind (point, scatter, bubble, line, 2–3 point
line, area, bar on nominal and quantitative axes, horizontal, grouped, stacked, pie,
donut), a column per library (Vega-Lite/Altair via vl-convert, D3, ECharts, Bokeh,
plotly.js, Chart.js, matplotlib, seaborn; tests/pipelines/chart_libraries draws them from
one random spec per chart). Each cell is the share of true values read back within 2%
relative error (goal: ≥ 95% in every cell), with the share located at all beside it as
the baseline that tells "found but misread" from "not found". '—' = the library has no
such chart. A second table keeps the matplotlib style sweep (SVG with glyph-path text,
SVG with <text>, PDF through PyMuPDF) from synthetic.py.

    .venv/bin/python bench/chart_accuracy.py --n 10 [--libraries altair,d3] [--kinds bar,pie]
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
from tests.pipelines.chart_libraries import KINDS, LIBRARIES  # noqa: E402
from tests.pipelines.chart_libraries import make_spec as library_spec  # noqa: E402

SOURCES = ("mpl-svg", "mpl-svg-text", "mpl-pdf")


def recover_matplotlib(spec, source: str) -> list[dict]:
    if source == "mpl-pdf":
        import pymupdf

        from pipelines.charts.pdf_vector import scenes_from_page

        doc = pymupdf.open(stream=render(spec, "pdf"), filetype="pdf")
        return [c for _, scene in scenes_from_page(doc[0]) for c in read_charts(scene)]
    from pipelines.charts.svg import parse_svg

    return read_charts(parse_svg(render(spec, "svg", svg_text=source == "mpl-svg-text")))


def match_accuracy(spec, charts: list[dict]) -> tuple[int, int, int]:
    """(values in truth, values recovered, values within 2% relative error)."""
    truth = spec["series"]
    total = sum(len(s["points"]) for s in truth)
    if not charts or not charts[0]["series"]:
        return total, 0, 0
    got = charts[0]["series"]
    if spec["type"] in ("pie", "donut"):
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


def library_table(libraries: list[str], kinds: list[str], n: int, seed: int,
                  failures: list) -> dict:
    """{(kind, library): cell} for charts drawn by each library from the same specs."""
    cells = {}
    renderer = None
    try:
        for name in libraries:
            lib = LIBRARIES[name]
            if not lib.available():
                print(f"{name}: not installed (make install puts the npm packages in tests/js)")
                continue
            if lib.browser and renderer is None:
                from pipelines.charts.render_html import SvgRenderer

                renderer = SvgRenderer().open()
            for kind in kinds:
                if kind not in lib.kinds:
                    continue
                rng = random.Random(f"{seed}-{kind}")
                cell = {"charts": 0, "recovered": 0, "values": 0, "found": 0, "within_2pct": 0,
                        "errors": 0}
                for _ in range(n):
                    spec = library_spec(rng, kind)
                    try:
                        charts = lib.recover(spec, renderer)
                    except Exception as exc:  # a drawing failure is a cell fact, not a crash
                        cell["errors"] += 1
                        charts = []
                        if len(failures) < 50:
                            failures.append((name, spec, repr(exc)[:300]))
                    _count(cell, spec, charts, failures, name)
                cells[(kind, name)] = cell
    finally:
        if renderer is not None:
            renderer.close()
    return cells


def _count(cell: dict, spec: dict, charts: list, failures: list, source: str) -> None:
    total, found, good = match_accuracy(spec, charts)
    cell["charts"] += 1
    cell["recovered"] += bool(charts and charts[0]["recovered"])
    cell["values"] += total
    cell["found"] += found
    cell["within_2pct"] += good
    if good < total and len(failures) < 200:
        failures.append((source, spec, charts))


def synthetic_table(sources: list[str], types: list[str], n: int, seed: int,
                    failures: list) -> dict:
    """{(type, source): cell} for the matplotlib style sweep of synthetic.py."""
    cells = {}
    for source in sources:
        for kind in types:
            rng = random.Random(f"{seed}-{kind}")
            cell = {"charts": 0, "recovered": 0, "values": 0, "found": 0, "within_2pct": 0}
            for _ in range(n):
                spec = make_spec(rng, kind)
                _count(cell, spec, recover_matplotlib(spec, source), failures, source)
            cells[(kind, source)] = cell
    return cells


def print_table(cells: dict, rows: list[str], columns: list[str], title: str) -> None:
    """Side by side: 'within 2% / found' per cell."""
    columns = [c for c in columns if any((r, c) in cells for r in rows)]
    width = 14
    print(title)
    print(f"{'kind':<23}" + "".join(f"{c:>{width}}" for c in columns))
    for row in rows:
        line = f"{row:<23}"
        for col in columns:
            cell = cells.get((row, col))
            if cell is None:
                line += f"{'—':>{width}}"
                continue
            values = max(1, cell["values"])
            line += f"{cell['within_2pct'] / values:>7.0%}/{cell['found'] / values:<5.0%} ".rjust(width)
        print(line)
    print()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10, help="charts per library and kind")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--libraries", default=",".join(LIBRARIES))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--sources", default=",".join(SOURCES),
                        help="matplotlib style-sweep sources ('' to skip that table)")
    parser.add_argument("--types", default=",".join(CHART_TYPES))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--failures", type=int, default=0, help="print this many failing specs")
    args = parser.parse_args(argv)
    libraries = [x for x in args.libraries.split(",") if x]
    kinds = [x for x in args.kinds.split(",") if x]
    sources = [x for x in args.sources.split(",") if x]
    types = [x for x in args.types.split(",") if x]
    failures: list = []
    start = time.time()
    cpu = time.process_time()
    lib_cells = library_table(libraries, kinds, args.n, args.seed, failures)
    syn_cells = synthetic_table(sources, types, args.n, args.seed, failures)
    if args.json:
        print(json.dumps({"libraries": [{"kind": k, "library": c, **v} for (k, c), v in lib_cells.items()],
                          "synthetic": [{"type": k, "source": c, **v} for (k, c), v in syn_cells.items()]},
                         indent=1))
    else:
        print_table(lib_cells, kinds, libraries,
                    f"Values within 2% / values found, {args.n} charts per cell (goal ≥ 95% in every cell)")
        if syn_cells:
            print_table(syn_cells, types, sources, "matplotlib style sweep (synthetic.py)")
        cells = list(lib_cells.values())
        low = [f"{k}/{c}" for (k, c), v in lib_cells.items()
               if v["within_2pct"] < 0.95 * max(1, v["values"])]
        print(f"library cells at goal: {len(cells) - len(low)}/{len(cells)}; below: {', '.join(low) or 'none'}")
        print(f"({time.time() - start:.0f} s wall, {time.process_time() - cpu:.0f} CPU-s in this "
              f"process; the browser's own CPU is not counted)")
    for source, spec, charts in failures[:args.failures]:
        print("FAIL", source, json.dumps({k: spec[k] for k in ("type", "series")})[:500])
        print("  GOT", json.dumps(charts)[:500])
    return 0


if __name__ == "__main__":
    sys.exit(main())
