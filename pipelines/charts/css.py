"""CSS for SVG charts: the cascade (``<style>`` rules, presentation attributes, inline
``style``, ``!important``, inheritance, ``inherit``/``currentColor``) and every CSS colour
syntax, through tinycss2 (tokenising, colour parsing) and cssselect2 (selector matching).

Chart libraries style marks in three ways: presentation attributes (matplotlib, plotly),
inline ``style`` (ECharts, plotly) and class rules in a ``<style>`` element (Vega, D3
gallery pages, matplotlib's own ``<style>`` block). A reader that only looks at attributes
sees class-styled bars as black or not at all.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from typing import Mapping

import cssselect2
import tinycss2
from tinycss2 import color4

log = logging.getLogger(__name__)

#: Properties the chart reader uses; only these are tracked through the cascade.
PROPERTIES = ("fill", "stroke", "stroke-width", "font-size", "text-anchor", "fill-opacity",
              "stroke-opacity", "opacity", "display", "visibility", "color", "font-weight")
#: Properties a child inherits from its parent when it does not set them (SVG 2, §13).
INHERITED = frozenset({"fill", "stroke", "stroke-width", "font-size", "text-anchor",
                       "fill-opacity", "stroke-opacity", "visibility", "color", "font-weight"})
#: Initial values (SVG 2 / CSS): a shape with no fill anywhere is filled black.
INITIAL = {"fill": "black", "stroke": "none", "stroke-width": "1", "font-size": "16px",
           "text-anchor": "start", "fill-opacity": "1", "stroke-opacity": "1", "opacity": "1",
           "display": "inline", "visibility": "visible", "color": "black",
           "font-weight": "normal"}

Declarations = dict[str, tuple[str, bool]]  # name -> (value, important)


def parse_declarations(text: str) -> Declarations:
    """``fill: red; stroke: blue !important`` → {name: (value, important)} (tinycss2)."""
    out: Declarations = {}
    for decl in tinycss2.parse_blocks_contents(text or "", skip_comments=True,
                                               skip_whitespace=True):
        if decl.type != "declaration":
            continue
        out[decl.lower_name] = (tinycss2.serialize(decl.value).strip(), decl.important)
    return out


class StyleSheets:
    """All ``<style>`` rules of one SVG document, matched per element with cssselect2."""

    def __init__(self, root: ET.Element):
        self.matcher = cssselect2.Matcher()
        self.rules = 0
        for element in root.iter():
            if _local(element.tag) == "style":
                self._add(element.text or "")
        self.matches: dict[int, list[Declarations]] = {}
        if self.rules:
            for wrapper in cssselect2.ElementWrapper.from_xml_root(root).iter_subtree():
                found = self.matcher.match(wrapper)
                if found:
                    # match() orders by specificity, then by source order: later wins.
                    self.matches[id(wrapper.etree_element)] = [m[3] for m in found]

    def _add(self, css: str) -> None:
        rules = tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
        for rule in rules:
            if rule.type == "at-rule" and rule.lower_at_keyword == "media" and rule.content:
                # Chart exports are not printed or resized: apply screen rules as written.
                self._add(tinycss2.serialize(rule.content))
                continue
            if rule.type != "qualified-rule":
                continue
            decls = parse_declarations(tinycss2.serialize(rule.content))
            try:
                selectors = cssselect2.compile_selector_list(rule.prelude)
            except cssselect2.SelectorError as exc:
                log.debug("css selector skipped: %s", exc)
                continue
            for selector in selectors:
                if selector.pseudo_element is None:
                    self.matcher.add_selector(selector, decls)
                    self.rules += 1

    def declared(self, element: ET.Element) -> list[Declarations]:
        """The rule blocks that match `element`, lowest precedence first."""
        return self.matches.get(id(element), [])


def computed_style(element: ET.Element, parent: Mapping[str, str], sheets: StyleSheets | None
                   ) -> dict[str, str]:
    """The element's values for `PROPERTIES`, after cascade and inheritance.

    Precedence (CSS Cascade 4 + SVG 2): presentation attributes < style sheet rules (by
    specificity, then order) < inline ``style`` < ``!important`` rules < ``!important``
    inline. ``inherit`` takes the parent's value; ``currentColor`` stays a keyword here
    and is resolved with the element's own ``color`` by `resolve_paint`.
    """
    normal: dict[str, str] = {k: v.strip() for k, v in element.attrib.items() if k in PROPERTIES}
    important: dict[str, str] = {}
    blocks = sheets.declared(element) if sheets is not None else []
    inline = parse_declarations(element.get("style") or "")
    for block in [*blocks, inline]:
        for name, (value, is_important) in block.items():
            if name == "font":  # the shorthand sets the size too (``font: 12px sans-serif``)
                name, value = "font-size", _shorthand_font_size(value)
            if name in PROPERTIES and value:
                (important if is_important else normal)[name] = value
    normal.update(important)
    out: dict[str, str] = {}
    for name in PROPERTIES:
        value = normal.get(name)
        keyword = value.lower() if value else None
        if value is None:
            value = parent.get(name) if name in INHERITED else None
        elif keyword == "inherit":
            value = parent.get(name)
        elif keyword == "unset":
            value = parent.get(name) if name in INHERITED else None
        elif keyword == "initial":
            value = None
        out[name] = INITIAL[name] if value is None else value
    out["font-size"] = _absolute_font_size(out["font-size"], parent.get("font-size"))
    return out


def _shorthand_font_size(value: str) -> str | None:
    """The size in a ``font`` shorthand: its first length or percentage token."""
    for token in tinycss2.parse_component_value_list(value):
        if token.type == "dimension" and token.lower_unit in ("px", "pt", "em", "rem", "ex"):
            return f"{token.value:g}{token.lower_unit}"
        if token.type == "percentage":
            return f"{token.value:g}%"
    return None


def _absolute_font_size(value: str, parent: str | None) -> str:
    """em / % sizes relative to the parent's size (D3 axes use ``font-size: 0.8em``)."""
    v = value.strip().lower()
    base = float(_px(parent)) if parent else 16.0
    try:
        if v.endswith("em") and not v.endswith("rem"):
            return f"{float(v[:-2]) * base:g}px"
        if v.endswith("%"):
            return f"{float(v[:-1]) * base / 100:g}px"
    except ValueError:
        return value
    return value


def _px(value: str) -> str:
    v = value.strip().lower()
    try:
        if v.endswith("pt"):
            return f"{float(v[:-2]) * 4 / 3:g}"
        return f"{float(v.rstrip('px') or 16):g}"
    except ValueError:
        return "16"


def resolve_paint(value: str | None, style: Mapping[str, str]) -> tuple[str, float] | None:
    """A fill/stroke value → ('#rrggbb', alpha), None for none/transparent/gradients."""
    if value is None:
        return None
    value = value.strip()
    if value.lower() == "currentcolor":
        value = style.get("color") or "black"
        if value.lower() == "currentcolor":
            value = "black"
    return css_color(value)


def css_color(value: str | None) -> tuple[str, float] | None:
    """Any CSS Color 4 syntax (names, #rgb[a], rgb(), hsl(), hwb(), lab(), lch(), oklab(),
    oklch(), color(srgb|display-p3|xyz ...)) → ('#rrggbb', alpha); None when no colour.

    Parsing is tinycss2's; colours outside sRGB are converted with the CSS Color 4
    matrices and clipped to the sRGB gamut.
    """
    if not value:
        return None
    value = value.strip()
    if value.lower() in ("none", "") or value.lower().startswith("url("):
        return None
    parsed = color4.parse_color(value)
    if parsed is None or isinstance(parsed, str):
        return None
    if parsed.alpha == 0:
        return None
    rgb = _to_srgb(parsed)
    if rgb is None:
        return None
    return "#" + "".join(f"{round(min(1.0, max(0.0, c)) * 255):02x}" for c in rgb), parsed.alpha


# CSS Color 4, §18 sample code: linear sRGB/Display P3 <-> XYZ (D65), Bradford D50 -> D65.
_XYZ65_TO_LIN_SRGB = ((3.2409699419045226, -1.537383177570094, -0.4986107602930034),
                      (-0.9692436362808796, 1.8759675015077202, 0.04155505740717559),
                      (0.05563007969699366, -0.20397695888897652, 1.0569715142428786))
_D50_TO_D65 = ((0.955473421488075, -0.02309845494876471, 0.06325924320057072),
               (-0.0283697093338637, 1.0099953980813041, 0.021041441191917323),
               (0.012314014864481998, -0.020507649298898964, 1.330365926242124))
_LIN_P3_TO_XYZ65 = ((0.4865709486482162, 0.26566769316909306, 0.1982172852343625),
                    (0.2289745640697488, 0.6917385218365064, 0.079286914093745),
                    (0.0, 0.04511338185890264, 1.043944368900976))


def _mul(m, v):
    return tuple(sum(m[i][j] * v[j] for j in range(3)) for i in range(3))


def _gamma(c: float) -> float:
    """Linear light → sRGB transfer (sign kept for out-of-gamut values)."""
    sign, c = (-1 if c < 0 else 1), abs(c)
    return sign * (1.055 * c ** (1 / 2.4) - 0.055 if c > 0.0031308 else 12.92 * c)


def _linear(c: float) -> float:
    sign, c = (-1 if c < 0 else 1), abs(c)
    return sign * (((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92)


def _to_srgb(color: color4.Color) -> tuple[float, float, float] | None:
    space = color.space
    coords = tuple(0.0 if math.isnan(c) else c for c in color.coordinates)
    color = color4.Color(space, coords, color.alpha)
    if space in ("srgb", "hsl", "hwb"):
        return tuple(color.to("srgb").coordinates)
    if space == "srgb-linear":
        return tuple(_gamma(c) for c in coords)
    if space == "display-p3":
        xyz = _mul(_LIN_P3_TO_XYZ65, [_linear(c) for c in coords])
    elif space in ("lab", "lch", "xyz-d50"):
        xyz = _mul(_D50_TO_D65, color.to("xyz-d50").coordinates)
    elif space in ("oklab", "oklch", "xyz-d65", "xyz"):
        xyz = color.to("xyz-d65").coordinates
    else:  # a98-rgb, prophoto-rgb, rec2020: wide-gamut RGBs read as sRGB (close enough to
        # tell series apart, which is all the reader needs a colour for)
        log.debug("colour space %s read as sRGB", space)
        return coords
    return tuple(_gamma(c) for c in _mul(_XYZ65_TO_LIN_SRGB, xyz))


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
