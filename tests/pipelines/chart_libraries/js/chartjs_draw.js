// Draws a vlforge chart spec with Chart.js onto an svgcanvas context (a canvas 2D API that
// records SVG: the usual way to get SVG out of Chart.js), then puts that SVG in the page.
window.drawChart = (spec) => {
  const W = 640, H = 400;
  // svgcanvas's Element stands in for a <canvas>: Chart.js draws on its 2D context,
  // which records SVG elements instead of pixels.
  const canvas = new exports.Element({width: W, height: H});
  canvas.width = W; canvas.height = H;
  const kind = spec.type, series = spec.series;
  const labels = series[0].points.map(p => p.x);
  const palette = ["#36a2eb", "#ff6384", "#4bc0c0", "#ff9f40", "#9966ff", "#ffcd56"];
  const numericX = ["bar_quantitative", "line", "short_line", "area", "scatter", "point", "bubble"].includes(kind);
  let type = {line: "line", short_line: "line", area: "line", scatter: "scatter", point: "scatter",
              bubble: "bubble", pie: "pie", donut: "doughnut"}[kind] || "bar";
  const datasets = series.map((s, i) => {
    const c = palette[i];
    const base = {label: s.name || "value", backgroundColor: c, borderColor: c};
    if (kind === "pie" || kind === "donut") return {data: s.points.map(p => p.y), backgroundColor: palette};
    if (kind === "bubble") return {...base, data: s.points.map(p => ({x: p.x, y: p.y, r: p.size * 2}))};
    if (numericX && kind !== "bar_quantitative") return {...base, data: s.points.map(p => ({x: p.x, y: p.y})),
      fill: kind === "area", pointRadius: kind === "point" ? 5 : kind === "scatter" ? 4 : 0,
      pointStyle: kind === "point" ? "rectRot" : "circle",
      backgroundColor: kind === "point" ? "transparent" : kind === "area" ? "rgba(54, 162, 235, 0.5)" : c,
      showLine: kind !== "scatter" && kind !== "point"};
    if (kind === "bar_quantitative") return {...base, data: s.points.map(p => ({x: p.x, y: p.y})), barThickness: 20};
    return {...base, data: s.points.map(p => p.y)};
  });
  const horizontal = kind.startsWith("horizontal");
  const scales = {};
  if (!(kind === "pie" || kind === "donut")) {
    const t = (text) => ({display: !!text, text: text || ""});
    scales.x = {title: t(horizontal ? spec.y_label : spec.x_label), stacked: kind === "stacked_bar"};
    scales.y = {title: t(horizontal ? spec.x_label : spec.y_label), stacked: kind === "stacked_bar"};
    if (numericX) scales.x.type = "linear";
    if (kind === "bar_quantitative") { scales.x.offset = true; scales.x.ticks = {stepSize: 1}; }
    if (kind.includes("bar") || kind === "area") (horizontal ? scales.x : scales.y).beginAtZero = true;
  }
  const chart = new Chart(canvas, {
    type: type, data: {labels: numericX ? undefined : labels, datasets: datasets},
    options: {animation: false, responsive: false, devicePixelRatio: 1, events: [],
              indexAxis: horizontal ? "y" : "x", scales: scales,
              plugins: {title: {display: !!spec.title, text: spec.title || ""},
                        legend: {display: series.length > 1 || kind === "pie" || kind === "donut"}}},
    platform: Chart.BasicPlatform,
  });
  chart.draw();
  document.getElementById("c").innerHTML = canvas.ctx.getSerializedSvg(true);
};
