"""`vlforge chart FILE [--page N] [--json]` on SVG and PDF files, through the real CLI."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pymupdf  # noqa: E402
import pytest  # noqa: E402

from pipelines.cli import main  # noqa: E402


def save_chart(path, fmt):
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(["A", "B", "C"], [28, 55, 43])
    ax.set_title("Scores")
    ax.set_xlabel("Team")
    ax.set_ylabel("Points")
    fig.savefig(path, format=fmt)
    plt.close(fig)


def test_chart_json_for_an_svg(tmp_path, capsys):
    path = tmp_path / "bars.svg"
    save_chart(path, "svg")
    assert main(["chart", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    [chart] = out["charts"]
    assert {k: chart[k] for k in ("type", "title", "x_label", "y_label")} == {
        "type": "bar", "title": "Scores", "x_label": "Team", "y_label": "Points"}
    assert chart["series"][0]["points"] == [{"x": "A", "y": 28.0}, {"x": "B", "y": 55.0},
                                            {"x": "C", "y": 43.0}]


def test_chart_page_option_and_plain_output(tmp_path, capsys):
    chart_pdf = tmp_path / "chart.pdf"
    save_chart(chart_pdf, "pdf")
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "cover page")
    doc.insert_pdf(pymupdf.open(str(chart_pdf)))
    path = tmp_path / "two.pdf"
    doc.save(str(path))

    assert main(["chart", str(path), "--page", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["charts"] == []
    assert main(["chart", str(path), "--page", "2", "--json"]) == 0
    [chart] = json.loads(capsys.readouterr().out)["charts"]
    assert chart["page"] == 1 and chart["source"] == "pdf-vector"
    assert main(["chart", str(path)]) == 0
    text = capsys.readouterr().out
    assert "bar chart page 2" in text and "A=28, B=55, C=43" in text


def test_chart_errors_are_clear(tmp_path, capsys):
    assert main(["chart", str(tmp_path / "missing.svg")]) == 1
    assert "no such file" in capsys.readouterr().err
    other = tmp_path / "notes.txt"
    other.write_text("hi")
    assert main(["chart", str(other)]) == 1
    assert "unsupported file type" in capsys.readouterr().err
    pdf = tmp_path / "one.pdf"
    save_chart(pdf, "pdf")
    assert main(["chart", str(pdf), "--page", "5"]) == 1
    assert "has 1 page" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [b"<svg", b"not xml at all"])
def test_broken_svg_is_an_error_not_a_crash(tmp_path, capsys, bad):
    path = tmp_path / "broken.svg"
    path.write_bytes(bad)
    assert main(["chart", str(path)]) == 1
    assert "vlforge chart: error" in capsys.readouterr().err
