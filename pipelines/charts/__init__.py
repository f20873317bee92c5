"""Chart detection and data recovery (vector SVG/PDF first, raster detection) + synthetic charts.

Modules: `scene` (shared vector primitives), `svg` and `pdf_vector` (sources → scene),
`axes` (scale fitting), `recognize` (scene → charts), `raster` (embedded chart images),
`synthetic` (charts with their table and code), `render_html` (Chromium → SVG),
`stage` (the `ExtractCharts` pipeline stage).
"""
