"""Raster charts: detected, labels read by real rapidocr, values never invented."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from pipelines.charts.raster import looks_like_chart, pixel_evidence  # noqa: E402
from pipelines.charts.stage import ExtractChartsFn  # noqa: E402
from pipelines.core.sample import Sample  # noqa: E402


def chart_png() -> bytes:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(["North", "South", "East", "West"], [120, 340, 260, 90])
    ax.set_title("Regional Sales")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def noise_png() -> bytes:
    arr = (np.random.default_rng(0).random((240, 320, 3)) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG")
    return buffer.getvalue()


def test_pixel_prefilter_separates_charts_from_photos():
    assert looks_like_chart(pixel_evidence(Image.open(io.BytesIO(chart_png()))))
    assert not looks_like_chart(pixel_evidence(Image.open(io.BytesIO(noise_png()))))


@pytest.mark.slow
def test_raster_chart_detected_with_ocr_labels_and_no_values():
    sample = Sample.create("images", "file:///chart.png", image=chart_png())
    photo = Sample.create("images", "file:///noise.png", image=noise_png())
    out = ExtractChartsFn(raster_ocr=True).run_local([sample, photo])
    [chart] = out[0].meta["chart"]["charts"]
    assert chart["source"] == "raster" and chart["recovered"] is False
    assert chart["series"] == []  # never invented
    assert chart["y_scale"] == "linear"
    assert {"0", "100", "200", "300"} <= set(chart["y_ticks"])
    assert chart["title"] == "Regional Sales"
    assert "chart" not in out[1].meta


def test_raster_uses_lines_of_an_earlier_ocr_stage_without_running_ocr():
    # Boxes as the OCR stage writes them (normalised); the stage must not load rapidocr.
    lines = [{"box": [0.05, y - 0.02, 0.09, y + 0.02], "text": str(v)}
             for v, y in [(0, 0.85), (10, 0.65), (20, 0.45), (30, 0.25)]]
    lines += [{"box": [0.3, 0.9, 0.36, 0.94], "text": "A"}, {"box": [0.6, 0.9, 0.66, 0.94], "text": "B"}]
    sample = Sample.create("images", "file:///c.png", image=chart_png(),
                           meta={"ocr": {"lines": lines}})
    fn = ExtractChartsFn(raster_ocr=False)
    [out] = fn.run_local([sample])
    [chart] = out.meta["chart"]["charts"]
    assert chart["recovered"] is False and chart["y_ticks"] == ["30", "20", "10", "0"]
    assert fn._detector.engine is None
