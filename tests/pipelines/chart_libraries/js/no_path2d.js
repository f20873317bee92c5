// Chart.js strokes lines through a cached Path2D when the browser has one; svgcanvas records
// only the 2D context's own path calls, so hide Path2D before Chart.js loads.
window.Path2D = undefined;
