// Draws a vlforge chart spec with Apache ECharts' SVG renderer (no animation).
window.drawChart = (spec) => {
  const el = document.getElementById("c");
  echarts.dispose(el);  // the page is reused: a chart left on the element would merge options
  el.style.width = "640px"; el.style.height = "400px";
  const chart = echarts.init(el, null, {renderer: "svg", width: 640, height: 400});
  const kind = spec.type, series = spec.series;
  const labels = series[0].points.map(p => p.x);
  const horizontal = kind.startsWith("horizontal");
  const opt = {animation: false, title: {text: spec.title || ""},
               legend: {show: series.length > 1 || kind === "pie" || kind === "donut", right: 10, top: 30, orient: "vertical"},
               grid: {left: 70, right: 130, top: 60, bottom: 50}};
  const named = (s) => s.name || "value";
  if (kind === "pie" || kind === "donut") {
    opt.series = [{type: "pie", radius: kind === "donut" ? ["40%", "70%"] : "70%",
                   data: series[0].points.map(p => ({name: p.x, value: p.y}))}];
  } else {
    const numericX = ["bar_quantitative", "line", "short_line", "area", "scatter", "point", "bubble"].includes(kind);
    const cat = {type: "category", data: labels, name: spec.x_label || "", nameLocation: "middle", nameGap: 30};
    const valAxis = {type: "value", name: spec.y_label || "", nameLocation: "middle", nameGap: 50,
                     scale: ["scatter", "point", "bubble", "line", "short_line"].includes(kind)};
    if (horizontal) { opt.yAxis = {...cat, inverse: true}; opt.xAxis = valAxis; }
    else if (numericX) { opt.xAxis = {type: "value", scale: true, name: spec.x_label || "", nameLocation: "middle", nameGap: 30}; opt.yAxis = valAxis; }
    else { opt.xAxis = cat; opt.yAxis = valAxis; }
    opt.series = series.map(s => {
      const data = numericX ? s.points.map(p => kind === "bubble" ? [p.x, p.y, p.size] : [p.x, p.y]) : s.points.map(p => p.y);
      if (kind.includes("bar")) return {type: "bar", name: named(s), data: data, stack: kind === "stacked_bar" ? "all" : undefined,
                                        barWidth: kind === "bar_quantitative" ? 20 : undefined};
      if (kind === "line" || kind === "short_line") return {type: "line", name: named(s), data: data, showSymbol: false};
      if (kind === "area") return {type: "line", name: named(s), data: data, showSymbol: false, areaStyle: {}};
      if (kind === "point") return {type: "scatter", name: named(s), data: data, symbol: "rect", itemStyle: {color: "transparent", borderColor: "#5470c6", borderWidth: 1.5}};
      if (kind === "bubble") return {type: "scatter", name: named(s), data: data, symbolSize: d => d[2] * 4};
      return {type: "scatter", name: named(s), data: data};
    });
  }
  chart.setOption(opt);
};
