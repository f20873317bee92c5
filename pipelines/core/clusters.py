"""Group nearby boxes (vector paths, glyph runs) into regions without comparing every pair.

PyMuPDF's `Page.cluster_drawings` compares each path with every other one, repeatedly
(45 million comparisons and a minute on one real page). `cluster_boxes` reaches the same
kind of result, a set of region boxes no two of which are within the tolerance of each
other, each the union of the boxes it absorbed, with a uniform grid over the page: a box
is only compared with the regions registered in the grid cells its tolerance box covers,
and each merge removes a region for good, so n boxes cost about O(n) grid look-ups
instead of O(n^2) comparisons.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Box = tuple[float, float, float, float]

GRID_CELLS = 32  # per side: small paths (a scatter dot, a glyph) touch one or two cells


def cluster_boxes(boxes: Iterable[Sequence[float]], tolerance_x: float = 3.0,
                  tolerance_y: float = 3.0, min_size: bool = True) -> list[Box]:
    """Merge boxes within the tolerances of each other (transitively, through the merged
    regions) and return the regions sorted by (bottom, left), as PyMuPDF's
    `cluster_drawings` does. With `min_size`, regions not wider than `tolerance_x` and
    taller than `tolerance_y` are left out (that function's final filter)."""
    items = [_normal(b) for b in boxes]
    if not items:
        return []
    x0 = min(b[0] for b in items)
    y0 = min(b[1] for b in items)
    x1 = max(b[2] for b in items)
    y1 = max(b[3] for b in items)
    grid = _Grid(x0, y0, x1, y1, tolerance_x, tolerance_y)
    for box in sorted(items, key=_area, reverse=True):  # big boxes first: most others then
        grid.add(box)                                   # fall inside a region at once
    regions = sorted(set(grid.regions.values()), key=lambda r: (r[3], r[0]))
    if min_size:
        regions = [r for r in regions if r[2] - r[0] > tolerance_x and r[3] - r[1] > tolerance_y]
    return regions


def _normal(b: Sequence[float]) -> Box:
    x0, y0, x1, y1 = (float(v) for v in b[:4])
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


class _Grid:
    """Live regions, each registered in every grid cell its (tolerance-widened) box covers."""

    def __init__(self, x0: float, y0: float, x1: float, y1: float, tx: float, ty: float):
        self.x0, self.y0, self.tx, self.ty = x0, y0, tx, ty
        self.cw = max((x1 - x0) / GRID_CELLS, tx, 1e-6)
        self.ch = max((y1 - y0) / GRID_CELLS, ty, 1e-6)
        self.regions: dict[int, Box] = {}
        self.spans: dict[int, tuple[int, int, int, int]] = {}
        self.cells: dict[tuple[int, int], set[int]] = {}
        self.next_id = 0

    def _span(self, box: Box) -> tuple[int, int, int, int]:
        # The tolerance widens the box on both sides, so neighbours share a cell.
        return (int((box[0] - self.tx - self.x0) // self.cw),
                int((box[1] - self.ty - self.y0) // self.ch),
                int((box[2] + self.tx - self.x0) // self.cw),
                int((box[3] + self.ty - self.y0) // self.ch))

    def _near(self, a: Box, b: Box) -> bool:
        return not (a[2] < b[0] - self.tx or a[0] > b[2] + self.tx
                    or a[3] < b[1] - self.ty or a[1] > b[3] + self.ty)

    def _neighbours(self, region: Box, skip: int) -> set[int]:
        cx0, cy0, cx1, cy1 = self._span(region)
        if (cx1 - cx0 + 1) * (cy1 - cy0 + 1) > len(self.regions):
            # a region wider than the live set: looking at every region is cheaper
            return {rid for rid, box in self.regions.items()
                    if rid != skip and self._near(region, box)}
        found: set[int] = set()
        for cx in range(cx0, cx1 + 1):
            for cy in range(cy0, cy1 + 1):
                for rid in self.cells.get((cx, cy), ()):
                    if rid != skip and rid not in found and self._near(region, self.regions[rid]):
                        found.add(rid)
        return found

    def add(self, box: Box) -> None:
        found = self._neighbours(box, -1)
        if not found:
            self._register(self._new_id(), box)
            return
        # The largest neighbour keeps its id and absorbs the rest; it is registered only
        # in the cells it grows into, so a big region is not re-registered per dot.
        keep = max(found, key=lambda rid: _area(self.regions[rid]))
        region = _union(self.regions[keep], box)
        others = found - {keep}
        while True:
            for rid in others:
                region = _union(region, self._remove(rid))
            if region == self.regions[keep]:
                break  # inside the kept region already: nothing moves (the common case)
            self._register(keep, region)
            others = self._neighbours(region, keep)  # a grown region reaches further
            if not others:
                break

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _register(self, rid: int, region: Box) -> None:
        old = self.spans.get(rid)
        span = self._span(region)
        self.regions[rid], self.spans[rid] = region, span
        for cx in range(span[0], span[2] + 1):
            for cy in range(span[1], span[3] + 1):
                if old is None or not (old[0] <= cx <= old[2] and old[1] <= cy <= old[3]):
                    self.cells.setdefault((cx, cy), set()).add(rid)

    def _remove(self, rid: int) -> Box:
        region = self.regions.pop(rid)
        span = self.spans.pop(rid)
        for cx in range(span[0], span[2] + 1):
            for cy in range(span[1], span[3] + 1):
                self.cells[(cx, cy)].discard(rid)
        return region


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _area(b: Box) -> float:
    return (b[2] - b[0]) * (b[3] - b[1])
