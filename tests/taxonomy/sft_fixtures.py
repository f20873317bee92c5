"""Source samples and run directories for the SFT tests, generated in code.

The samples look like what the pdf / crawl / chart stages write: a page with a text layer
and markdown, a scanned page with OCR lines, a table crop, a web screenshot with DOM lines
and HTML, and charts drawn with matplotlib by the very code stored in ``meta["chart"]``.
"""

from __future__ import annotations

import io
import json
import os

from PIL import Image, ImageDraw

from pipelines.core.run_dir import RunDir
from pipelines.core.runner import input_ref
from pipelines.core.sample import Sample
from pipelines.core.shards import ShardWriter

PAGE_LINES = ["Annual Report on Coastal Birds", "Section 2: Nesting counts by island",
              "Counts rose on three of the four islands surveyed this year."]
OTHER_LINES = ["Minutes of the Library Committee", "Item 4:  opening hours in winter",
               "The committee agreed to open at nine on Saturdays."]
WEB_LINES = ["Kettle Store - Home", "Stainless steel kettles from 19 euros",
             "Free delivery for orders over 50 euros"]
WEB_HTML = ("<html><body><h1>Kettle Store - Home</h1><p>Stainless steel kettles from 19 euros"
            "</p><footer>Free delivery for orders over 50 euros</footer></body></html>")
TABLE_MD = ("| Island | Nests 2023 | Nests 2024 |\n|---|---|---|\n| North | 120 | 150 |\n"
            "| South | 80 | 75 |\n| East | 45 | 60 |\n| West | 200 | 210 |\n")
CHART_SERIES = [
    {"name": "Apples", "points": [{"x": 2019, "y": 12}, {"x": 2020, "y": 15.5},
                                  {"x": 2021, "y": 9}, {"x": 2022, "y": 21}]},
    {"name": "Pears", "points": [{"x": 2019, "y": 7}, {"x": 2020, "y": 8},
                                 {"x": 2021, "y": 11}, {"x": 2022, "y": 13.25}]},
]
CHART_CODE = """import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
ax.plot([2019, 2020, 2021, 2022], [12, 15.5, 9, 21], label="Apples")
ax.plot([2019, 2020, 2021, 2022], [7, 8, 11, 13.25], label="Pears")
ax.set_xlabel("Year")
ax.set_ylabel("Tonnes")
ax.legend()
"""
BAR_SERIES = [{"name": "Visitors", "points": [{"x": "Mon", "y": 30}, {"x": "Tue", "y": 42},
                                              {"x": "Wed", "y": 42}, {"x": "Thu", "y": 18}]}]


def text_png(lines: list[str], size: tuple[int, int] = (320, 120)) -> bytes:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((6, 6 + 14 * i), line, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def chart_png(code: str) -> bytes:
    """Run the plotting code and return the figure it drew as PNG bytes."""
    import matplotlib.pyplot as plt

    scope: dict = {}
    exec(code, scope)  # the fixture's own code: the answer to chart→code must draw this
    buffer = io.BytesIO()
    scope["fig"].savefig(buffer, format="png")
    plt.close(scope["fig"])
    return buffer.getvalue()


def bar_code(series: list[dict]) -> str:
    xs = [p["x"] for p in series[0]["points"]]
    ys = [p["y"] for p in series[0]["points"]]
    return ("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots(figsize=(3, 2), dpi=60)\n"
            f"ax.bar({xs!r}, {ys!r})\n")


def _lines(texts: list[str]) -> list[dict]:
    return [{"box": [0.02, 0.05 + 0.12 * i, 0.9, 0.15 + 0.12 * i], "text": t}
            for i, t in enumerate(texts)]


def source_samples() -> list[Sample]:
    """One sample of each kind the templates serve (plus two that they must refuse)."""
    page = Sample.create("pdf", "sha256:aaa#page=0", image=text_png(PAGE_LINES),
                         markdown="# Annual Report on Coastal Birds\n\n## Section 2: Nesting "
                                  "counts by island\n\nCounts rose on three of the four islands "
                                  "surveyed this year.\n",
                         meta={"pdf": {"kind": "page", "page": 0, "page_count": 3,
                                       "lines": _lines(PAGE_LINES), "needs_ocr": False}})
    page2 = Sample.create("pdf", "sha256:bbb#page=1", image=text_png(OTHER_LINES),
                          markdown="# Minutes of the Library Committee\n\nItem 4.\n",
                          meta={"pdf": {"kind": "page", "page": 1, "page_count": 2,
                                        "lines": _lines(OTHER_LINES), "needs_ocr": False}})
    scanned = Sample.create("pdf", "sha256:ccc#page=0", image=text_png(OTHER_LINES[::-1]),
                            meta={"pdf": {"kind": "page", "page": 0, "needs_ocr": True},
                                  "ocr": {"backend": "rapidocr", "lines": [
                                      {**line, "confidence": 0.97, "low_confidence": False}
                                      for line in _lines(OTHER_LINES[::-1])]}})
    blurry = Sample.create("pdf", "sha256:ddd#page=0", image=text_png(["???"]),
                           meta={"pdf": {"kind": "page", "page": 0, "needs_ocr": True},
                                 "ocr": {"backend": "rapidocr", "lines": [
                                     {"box": [0, 0, 1, 1], "text": "Th3 qu1ck brwn fx jmps",
                                      "confidence": 0.31, "low_confidence": True}]}})
    table = Sample.create("pdf", "sha256:aaa#page=2&table=0", image=text_png(["table"]),
                          markdown=TABLE_MD, meta={"pdf": {"kind": "table", "page": 2}})
    web = Sample.create("web", "http://127.0.0.1/kettles", image=text_png(WEB_LINES),
                        html=WEB_HTML, meta={"web": {"url": "http://127.0.0.1/kettles",
                                                     "lines": _lines(WEB_LINES), "status": 200}})
    line_chart = Sample.create(
        "chart-synth", "synthetic://line/0", image=chart_png(CHART_CODE),
        meta={"chart": {"charts": [{"type": "line", "title": "Fruit harvest", "x_label": "Year",
                                    "y_label": "Tonnes", "series": CHART_SERIES,
                                    "source": "synthetic", "recovered": False,
                                    "box": [0, 0, 1, 1], "code": CHART_CODE}]}})
    bar_chart = Sample.create(
        "chart-synth", "synthetic://bar/1", image=chart_png(bar_code(BAR_SERIES)),
        meta={"chart": {"charts": [{"type": "bar", "title": "Visitors", "x_label": "Day",
                                    "y_label": "Visitors", "series": BAR_SERIES,
                                    "source": "raster", "recovered": True,
                                    "box": [0, 0, 1, 1]}]}})
    photo = Sample.create("images", "file:///photo.png", image=text_png([]))
    return [page, page2, scanned, blurry, table, web, line_chart, bar_chart, photo]


def write_source_run(directory: str, samples: list[Sample], pipeline: str = "fixture") -> str:
    """A complete run directory (inputs, shards, manifest, _SUCCESS) holding `samples`."""
    run = RunDir(directory)
    refs = [input_ref(pipeline, s.locator) for s in samples]
    run.plan(pipeline, refs, {}, task_size=len(samples) + 1)
    stamped = []
    for sample, ref in zip(samples, refs):
        lineage = {**sample.lineage, "input_id": ref["input_id"], "item_id": ref["input_id"],
                   "input_ref": ref, "task": "t00000"}
        stamped.append(sample.with_meta("lineage", lineage))
    writer = ShardWriter(run.url, prefix=f"{pipeline}-t00000")
    for sample in stamped:
        writer.write(sample)
    run.write_task("t00000", writer.close(), writer.rows, [])
    run.finalize()
    return directory


def write_llava_jsonl(directory: str) -> str:
    """A LLaVA-style jsonl: image records (relative paths), a text-only dialogue, a bad one."""
    os.makedirs(os.path.join(directory, "images"), exist_ok=True)
    with open(os.path.join(directory, "images", "receipt.png"), "wb") as handle:
        handle.write(text_png(["RECEIPT", "Coffee 3.20", "Total 3.20"]))
    with open(os.path.join(directory, "images", "chart.png"), "wb") as handle:
        handle.write(chart_png(CHART_CODE))
    records = [
        {"id": "r1", "image": "images/receipt.png", "conversations": [
            {"from": "human", "value": "<image>\nTranscribe the text on this receipt."},
            {"from": "gpt", "value": "RECEIPT\nCoffee 3.20\nTotal 3.20"}]},
        {"id": "r2", "image": "images/chart.png", "conversations": [
            {"from": "human", "value": "What is the trend of the Apples series in this chart?"},
            {"from": "gpt", "value": "It goes up overall."},
            {"from": "human", "value": "And Pears?"},
            {"from": "gpt", "value": "It rises every year."}]},
        {"id": "t1", "conversations": [
            {"from": "human", "value": "Write a haiku about autumn rain."},
            {"from": "gpt", "value": "Cold rain on the roof\nleaves let go without a sound\n"
                                     "the kettle answers"}]},
        {"id": "bad-image", "image": "images/missing.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat is this?"},
            {"from": "gpt", "value": "A picture."}]},
        {"id": "two-tokens", "image": "images/receipt.png", "conversations": [
            {"from": "human", "value": "<image>\n<image>\nCompare these."},
            {"from": "gpt", "value": "They match."}]},
    ]
    path = os.path.join(directory, "llava.jsonl")
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return path
