"""SFT templates: every answer checked against the source it claims (text layer, markdown,
HTML, chart series, table cells, plotting code); phrasings vary deterministically."""

from __future__ import annotations

import csv
import io

import pytest
from PIL import Image

from taxonomy.tree import load_taxonomy
from pipelines.sft.templates import (END_OF_SENTENCE, FAMILIES, IMAGE_TOKEN, NoAnswer,
                                    applicable_families, build_example, conversation,
                                    count_image_tokens, fmt_number, fmt_x, parse_markdown_table,
                                    render_conversation)
from tests.taxonomy.sft_fixtures import (BAR_SERIES, CHART_CODE, CHART_SERIES, OTHER_LINES,
                                         PAGE_LINES, TABLE_MD, WEB_HTML, WEB_LINES, chart_png,
                                         source_samples)


@pytest.fixture(scope="module")
def samples():
    page, page2, scanned, blurry, table, web, line_chart, bar_chart, photo = source_samples()
    return dict(page=page, page2=page2, scanned=scanned, blurry=blurry, table=table, web=web,
                line_chart=line_chart, bar_chart=bar_chart, photo=photo)


def _series_values(series):
    return {s["name"]: {str(p["x"]): float(p["y"]) for p in s["points"]} for s in series}


def test_template_leaves_exist_in_the_taxonomy():
    taxonomy = load_taxonomy()
    leaves = {node.id for node in taxonomy.leaves()}
    for family in FAMILIES.values():
        assert family.leaf in leaves, f"{family.name} serves {family.leaf}, not an active leaf"


def test_which_families_apply(samples):
    assert applicable_families(samples["page"]) == ["transcription", "page_markdown", "text_pair"]
    assert "transcription" in applicable_families(samples["scanned"])
    assert applicable_families(samples["blurry"]) == []  # low-confidence OCR is no ground truth
    assert applicable_families(samples["photo"]) == []
    assert set(applicable_families(samples["line_chart"])) == {
        "chart_to_table", "chart_to_code", "chart_qa", "chart_pair"}
    assert "chart_to_code" not in applicable_families(samples["bar_chart"])
    assert applicable_families(samples["table"]) == ["table_qa"]
    assert set(applicable_families(samples["web"])) == {"transcription", "ui_to_html", "text_pair"}


@pytest.mark.parametrize("name, lines, origin", [
    ("page", PAGE_LINES, "pdf.lines"), ("scanned", OTHER_LINES[::-1], "ocr.lines"),
    ("web", WEB_LINES, "web.lines")])
def test_transcription_answer_is_the_source_text(samples, name, lines, origin):
    example = build_example("transcription", [samples[name]])
    assert example.answer == "\n".join(lines)
    assert example.answer_source == origin
    assert example.leaf == "recognition.ocr_transcription.printed_text"


def test_transcription_refuses_untrusted_text(samples):
    with pytest.raises(NoAnswer) as err:
        build_example("transcription", [samples["blurry"]])
    assert err.value.reason == "no_text"


def test_phrasings_vary_with_variant_and_are_deterministic(samples):
    prompts = [build_example("transcription", [samples["page"]], v).user for v in range(6)]
    assert len(set(prompts)) == 6
    again = [build_example("transcription", [samples["page"]], v).user for v in range(6)]
    assert prompts == again
    # A different sample starts the rotation elsewhere (the hash of its key), not always at 0.
    starts = {build_example("transcription", [s], 0).user
              for s in (samples["page"], samples["page2"], samples["scanned"], samples["web"])}
    assert len(starts) > 1


def test_markdown_and_html_answers_equal_their_sources(samples):
    markdown = build_example("page_markdown", [samples["page"]])
    assert markdown.answer == samples["page"].markdown.strip()
    assert markdown.leaf == "recognition.ocr_transcription.specified_format"
    html = build_example("ui_to_html", [samples["web"]])
    assert html.answer == "```html\n" + WEB_HTML + "\n```"
    assert html.leaf == "conversion.image_to_code.ui_to_code"


def test_overlong_answers_are_refused(samples):
    with pytest.raises(NoAnswer) as err:
        build_example("ui_to_html", [samples["web"]], max_chars=50)
    assert err.value.reason == "answer_too_long"


def test_chart_to_table_round_trips_to_the_series(samples):
    expected = _series_values(CHART_SERIES)
    formats = set()
    for variant in range(6):
        example = build_example("chart_to_table", [samples["line_chart"]], variant)
        formats.add(example.computed["format"])
        if example.computed["format"] == "csv":
            body = example.answer.removeprefix("```csv\n").removesuffix("```")
            rows = list(csv.reader(io.StringIO(body)))
        else:
            header, rest = parse_markdown_table(example.answer)
            rows = [header] + rest
        header, body_rows = rows[0], rows[1:]
        assert header == ["Year", "Apples", "Pears"]
        for row in body_rows:
            for name, cell in zip(header[1:], row[1:]):
                assert float(cell) == expected[name][row[0]]
        assert len(body_rows) == 4
    assert formats == {"csv", "markdown"}


def test_chart_to_code_answer_is_the_code_that_drew_the_image(samples):
    example = build_example("chart_to_code", [samples["line_chart"]])
    code = example.answer.removeprefix("```python\n").removesuffix("\n```")
    assert code == CHART_CODE.strip()
    redrawn = Image.open(io.BytesIO(chart_png(code)))
    original = Image.open(io.BytesIO(samples["line_chart"].image))
    assert redrawn.size == original.size
    assert redrawn.tobytes() == original.tobytes()


def _check_chart_answer(c, answer, ys):
    """The computed numbers `c` agree with the values `ys` (x -> y) and the answer text says them."""
    if c["op"] in ("max", "min"):
        best = max(ys.values()) if c["op"] == "max" else min(ys.values())
        assert c["y"] == best and ys[c["x"]] == best
        assert c["x"] in answer and fmt_number(best) in answer
    elif c["op"] == "compare":
        assert (c["ya"], c["yb"]) == (ys[c["a"]], ys[c["b"]])
        assert c["higher"] == (c["a"] if ys[c["a"]] > ys[c["b"]] else c["b"])
        assert answer.startswith(f"It is higher at {c['higher']}")
    elif c["op"] == "difference":
        assert c["difference"] == ys[c["a"]] - ys[c["b"]]
        assert answer.endswith(f"{fmt_number(ys[c['a']] - ys[c['b']])}.")
    elif c["op"] == "trend":
        series = list(ys.values())
        assert (c["first"], c["last"]) == (series[0], series[-1])
        steps = [b - a for a, b in zip(series, series[1:])]
        if all(s >= 0 for s in steps):
            assert c["trend"] == "increasing"
        elif all(s <= 0 for s in steps):
            assert c["trend"] == "decreasing"
        else:
            assert "fluctuations" in c["trend"]
        assert c["trend"] in answer


def test_chart_questions_have_computed_answers(samples):
    values = _series_values(CHART_SERIES)
    ops = set()
    for variant in range(FAMILIES["chart_qa"].phrasings):
        example = build_example("chart_qa", [samples["line_chart"]], variant)
        assert example.answer_source == "chart.series"
        assert example.leaf == "analysis.data_chart_analysis.graph_interpretation"
        _check_chart_answer(example.computed, example.answer, values[example.computed["series"]])
        ops.add(example.computed["op"])
    assert ops == {"max", "min", "compare", "difference", "trend"}


def test_chart_questions_skip_ill_posed_ones_and_hedge_recovered_values(samples):
    values = _series_values(BAR_SERIES)
    for variant in range(FAMILIES["chart_qa"].phrasings):
        example = build_example("chart_qa", [samples["bar_chart"]], variant)
        assert example.computed["op"] != "max"  # Tue and Wed tie at 42: no single answer
        assert "about " in example.answer  # values read off a raster chart are approximate
        assert example.computed["op"] != "trend"  # weekdays of a bar chart: no numeric x order
        _check_chart_answer(example.computed, example.answer, values[example.computed["series"]])


def test_table_questions_are_computed_from_the_cells(samples):
    header, rows = parse_markdown_table(TABLE_MD)
    table = {h: {r[0]: float(r[i]) for r in rows} for i, h in enumerate(header) if i}
    seen = set()
    for variant in range(FAMILIES["table_qa"].phrasings):
        example = build_example("table_qa", [samples["table"]], variant)
        assert example.leaf == "analysis.data_chart_analysis.table_interpretation"
        _check_chart_answer(example.computed, example.answer, table[example.computed["column"]])
        seen.add(example.computed["op"])
    assert len(seen) >= 3


def test_two_image_comparisons(samples):
    chart = build_example("chart_pair", [samples["line_chart"], samples["bar_chart"]])
    assert chart.computed["maxima"] == [21.0, 42.0] and chart.computed["winner"] == 1
    assert chart.answer.startswith("The second chart: its maximum is about 42 (at Tue)")
    text = build_example("text_pair", [samples["page"], samples["page2"]])
    sources = ["\n".join(PAGE_LINES), "\n".join(OTHER_LINES)]
    target = text.computed["image"]
    assert text.computed["line"] in sources[target]
    assert text.computed["line"] not in sources[1 - target]
    assert text.computed["line"] in text.user
    assert text.answer == f"The {('first', 'second')[target]} image contains it."
    with pytest.raises(NoAnswer):
        build_example("text_pair", [samples["page"]])


def test_conversation_renders_in_the_deepseek_format(samples):
    example = build_example("chart_pair", [samples["line_chart"], samples["bar_chart"]])
    turns = conversation(example, images=2)
    assert [t["role"] for t in turns] == ["system", "user", "assistant"]
    assert count_image_tokens(turns) == 2
    rendered = render_conversation(turns)
    assert rendered.startswith(turns[0]["content"] + "\n\nUser: Image 1: " + IMAGE_TOKEN)
    assert rendered.endswith("\n\nAssistant: " + example.answer + END_OF_SENTENCE)


def test_answers_verify_on_synthetic_charts_of_every_type():
    """The chart families on the chart engineer's synthetic charts (all types, real code)."""
    synthetic = pytest.importorskip("pipelines.charts.synthetic")
    types = set()
    for sample in synthetic.synthetic_samples(12, seed=5):
        chart = sample.meta["chart"]["charts"][0]
        types.add(chart["type"])
        values = {s["name"]: {fmt_x(p["x"]): float(p["y"]) for p in s["points"]}
                  for s in chart["series"]}
        repeated_x = any(len({fmt_x(p["x"]) for p in s["points"]}) < len(s["points"])
                         for s in chart["series"])
        for variant in range(4):
            qa = build_example("chart_qa", [sample], variant)
            if repeated_x:  # a scatter repeating an x: only max/min are well posed
                assert qa.computed["op"] in ("max", "min")
                ys = [float(p["y"]) for s in chart["series"] if s["name"] == qa.computed["series"]
                      for p in s["points"]]
                assert qa.computed["y"] == (max(ys) if qa.computed["op"] == "max" else min(ys))
                assert "chart_to_table" not in applicable_families(sample)
                continue
            _check_chart_answer(qa.computed, qa.answer, values[qa.computed["series"]])
            table = build_example("chart_to_table", [sample], variant).computed
            for row in table["rows"]:
                for column, cell in zip(table["header"][1:], row[1:]):
                    name = None if column.startswith("series ") else column
                    if cell:
                        assert float(cell) == pytest.approx(values[name][row[0]], abs=0.005)
        code = build_example("chart_to_code", [sample]).answer
        assert chart["code"].strip() in code
    assert len(types) >= 5
