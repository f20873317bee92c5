"""Tick label parsing and axis scale fitting."""

import math

import pytest

from pipelines.charts.axes import fit_scale, parse_tick_value


@pytest.mark.parametrize("text,value", [
    ("1,200", 1200.0), ("−5", -5.0), ("2.5k", 2500.0), ("40%", 40.0), ("$3", 3.0),
    ("1e3", 1000.0), (r"$\mathdefault{10^{2}}$", 100.0), (r"$\mathdefault{10^{-1}}$", 0.1),
    ("10⁻²", 0.01), ("0.5", 0.5), ("2020", 2020.0), ("1M", 1e6),
])
def test_tick_labels_parse_to_numbers(text, value):
    assert parse_tick_value(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["A", "Mon", "Team A", "", "Q1"])
def test_category_labels_are_not_numbers(text):
    assert parse_tick_value(text) is None


def test_linear_scale_maps_positions_both_ways():
    # y-down page coordinates: value 0 at 300, 50 at 100
    scale = fit_scale([(300, 0), (260, 10), (220, 20), (180, 30), (140, 40), (100, 50)])
    assert scale.kind == "linear"
    assert scale.value(200) == pytest.approx(25)
    assert scale.position(25) == pytest.approx(200)


def test_log_scale_chosen_when_ticks_are_decades():
    scale = fit_scale([(300, 1), (200, 10), (100, 100), (0, 1000)])
    assert scale.kind == "log"
    assert scale.value(150) == pytest.approx(math.sqrt(10) * 10)


def test_labels_that_do_not_make_an_axis_are_rejected():
    assert fit_scale([(0, 5), (10, 5)]) is None  # one value
    assert fit_scale([(0, 1), (10, 7), (20, 2), (30, 9)]) is None  # not monotone/linear
