"""Axis scales fitted from tick positions and their labels (linear, or log where ticks say so).

A tick label's text is parsed to a number (``1,200``, ``−5``, ``2.5k``, ``40%``, ``$3``,
``1e3``, matplotlib mathtext ``$\\mathdefault{10^{2}}$``); the (position, value) pairs are
fitted with least squares on value and on log10(value), and the log scale is chosen only
when it fits clearly better (ticks 1, 10, 100 evenly spaced cannot be linear).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_SUFFIX = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9, "T": 1e12, "m": 1e-3,
           "µ": 1e-6, "μ": 1e-6, "u": 1e-6, "n": 1e-9}
_PLAIN = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_POWER = re.compile(r"^([-+]?\d+(?:\.\d+)?)?\s*(?:[x×·]\s*)?10\^\{?([-+]?\d+)\}?$")
_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")


def parse_tick_value(text: str) -> float | None:
    """The number a tick label shows, or None when it is not a number (a category)."""
    s = text.strip()
    if not s:
        return None
    s = re.sub(r"\\mathdefault\{(.*)\}", r"\1", s)  # matplotlib mathtext wrapper
    s = s.replace("$", "" if "\\" in s or "^" in s or s.count("$") > 1 else "$")
    s = s.replace("\\times", "×").replace("\\cdot", "·").replace("{", "").replace("}", "")
    s = s.replace("{", "").replace("}", "").replace("\\", "")
    s = s.replace("−", "-").replace("–", "-").replace("\u2009", "").replace(" ", "")
    s = s.replace(",", "").lstrip("$£€¥").rstrip("%")
    if re.search(r"10[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+$", s):
        base, exp = s.split("10", 1) if not s.startswith("10") else ("", s[2:])
        s = f"{base}10^{exp.translate(_SUPERSCRIPT)}"
    if _PLAIN.match(s):
        return float(s)
    match = _POWER.match(s)
    if match:
        mantissa = float(match.group(1)) if match.group(1) else 1.0
        return mantissa * 10 ** int(match.group(2))
    if len(s) > 1 and s[-1] in _SUFFIX and _PLAIN.match(s[:-1]):
        return float(s[:-1]) * _SUFFIX[s[-1]]
    return None


@dataclass
class AxisScale:
    """value = a·pos + b (linear) or 10^(a·pos + b) (log); residual is relative to the span."""

    kind: str
    a: float
    b: float
    residual: float = 0.0
    ticks: int = 0

    def value(self, pos: float) -> float:
        raw = self.a * pos + self.b
        return 10 ** raw if self.kind == "log" else raw

    def position(self, value: float) -> float:
        raw = math.log10(value) if self.kind == "log" else value
        return (raw - self.b) / self.a


def _least_squares(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("ticks at one position")
    a = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    b = my - a * mx
    span = (max(ys) - min(ys)) or 1.0
    resid = max(abs(a * x + b - y) for x, y in zip(xs, ys)) / span
    return a, b, resid


def fit_scale(pairs: list[tuple[float, float]], prefer_log: bool = False) -> AxisScale | None:
    """Fit a scale to (position, value) tick pairs; None when they do not make an axis.

    `prefer_log`: the labels are written as powers (10², 10^{-1}): a log axis even when
    only two ticks are labelled (matplotlib labels only the decades)."""
    pairs = sorted(set(pairs))
    if len({p for p, _ in pairs}) < 2 or len({v for _, v in pairs}) < 2:
        return None
    xs = [p for p, _ in pairs]
    ys = [v for _, v in pairs]
    a, b, resid = _least_squares(xs, ys)
    best = AxisScale("linear", a, b, resid, len(pairs))
    if prefer_log and all(v > 0 for v in ys):
        la, lb, lresid = _least_squares(xs, [math.log10(v) for v in ys])
        return AxisScale("log", la, lb, lresid, len(pairs)) if lresid <= 0.05 else None
    if all(v > 0 for v in ys) and len(pairs) >= 3:
        la, lb, lresid = _least_squares(xs, [math.log10(v) for v in ys])
        if lresid < 0.01 and resid > 0.02:
            best = AxisScale("log", la, lb, lresid, len(pairs))
    if best.residual > 0.05:
        return None
    return best
