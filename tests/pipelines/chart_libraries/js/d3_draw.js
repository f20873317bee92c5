// Draws a vlforge chart spec with D3 the way the D3 gallery does (scales, axes, joins).
// Marks are styled by class rules in a <style> element inside the SVG (as D3 examples do),
// so an SVG exported from the page carries its styling as CSS, not attributes.
window.drawChart = (spec) => {
  const W = 640, H = 400, m = {top: 40, right: 120, bottom: 50, left: 60};
  const w = W - m.left - m.right, h = H - m.top - m.bottom;
  const kind = spec.type, series = spec.series;
  const colors = ["steelblue", "hsl(28, 90%, 55%)", "rgb(44 160 44)"];
  const svg = d3.select("#c").append("svg").attr("width", W).attr("height", H)
    .attr("xmlns", "http://www.w3.org/2000/svg");
  svg.append("style").text(
    ".mark { fill: currentColor; } .s0 { color: steelblue; } .s1 { color: hsl(28, 90%, 55%); }" +
    " .s2 { color: rgb(44 160 44); } .line { fill: none; stroke: currentColor; stroke-width: 2px; }" +
    " .hollow { fill: none; stroke: currentColor; stroke-width: 1.5px; } .title { font: bold 16px sans-serif; }");
  if (spec.title) svg.append("text").attr("class", "title").attr("x", W / 2).attr("y", 22)
    .attr("text-anchor", "middle").text(spec.title);
  const g = svg.append("g").attr("transform", `translate(${m.left},${m.top})`);
  const labels = series[0].points.map(p => p.x);
  const all = series.flatMap(s => s.points);
  const legend = () => { if (series.length < 2) return;
    series.forEach((s, i) => { const l = svg.append("g").attr("transform", `translate(${W - 110},${m.top + 20 * i})`);
      l.append("rect").attr("class", `mark s${i}`).attr("width", 12).attr("height", 12);
      l.append("text").attr("x", 16).attr("y", 10).attr("font-size", 12).text(s.name); }); };
  const titles = () => {
    if (spec.x_label) svg.append("text").attr("x", m.left + w / 2).attr("y", H - 8).attr("text-anchor", "middle").attr("font-size", 12).text(spec.x_label);
    if (spec.y_label) svg.append("text").attr("transform", `translate(16,${m.top + h / 2}) rotate(-90)`).attr("text-anchor", "middle").attr("font-size", 12).text(spec.y_label); };
  if (kind === "pie" || kind === "donut") {
    const r = Math.min(w, h) / 2;
    const pg = g.append("g").attr("transform", `translate(${w / 2},${h / 2})`);
    const arcs = d3.pie().sort(null).value(d => d.y)(series[0].points);
    const arc = d3.arc().innerRadius(kind === "donut" ? r * 0.5 : 0).outerRadius(r);
    const color = d3.scaleOrdinal(d3.schemeTableau10);
    pg.selectAll("path").data(arcs).join("path").attr("d", arc).attr("fill", d => color(d.data.x)).attr("stroke", "white");
    const lab = d3.arc().innerRadius(r * 1.1).outerRadius(r * 1.1);
    pg.selectAll("text").data(arcs).join("text").attr("transform", d => `translate(${lab.centroid(d)})`)
      .attr("text-anchor", "middle").attr("font-size", 12).text(d => d.data.x);
    return;
  }
  const ymax = kind === "stacked_bar" ? d3.max(labels.map((_, j) => d3.sum(series, s => s.points[j].y)))
                                      : d3.max(all, p => p.y);
  const horizontal = kind.startsWith("horizontal");
  const val = d3.scaleLinear().domain([0, ymax]).nice().range(horizontal ? [0, w] : [h, 0]);
  const band = d3.scaleBand().domain(labels).range(horizontal ? [0, h] : [0, w]).padding(0.2);
  const xq = d3.scaleLinear().domain(d3.extent(all, p => p.x)).nice().range([0, w]);
  if (kind === "bar_quantitative") xq.domain([d3.min(all, p => p.x) - 1, d3.max(all, p => p.x) + 1]);
  const yq = d3.scaleLinear().domain(d3.extent(all, p => p.y)).nice().range([h, 0]);
  if (kind === "bar" || kind === "grouped_bar" || kind === "stacked_bar") {
    g.append("g").attr("transform", `translate(0,${h})`).call(d3.axisBottom(band));
    g.append("g").call(d3.axisLeft(val));
    const sub = d3.scaleBand().domain(series.map((_, i) => i)).range([0, band.bandwidth()]).padding(0.05);
    series.forEach((s, i) => g.append("g").selectAll("rect").data(s.points).join("rect")
      .attr("class", `mark s${i}`)
      .attr("x", (d, j) => band(d.x) + (kind === "grouped_bar" ? sub(i) : 0))
      .attr("width", kind === "grouped_bar" ? sub.bandwidth() : band.bandwidth())
      .attr("y", (d, j) => val(d.y + (kind === "stacked_bar" ? d3.sum(series.slice(0, i), t => t.points[j].y) : 0)))
      .attr("height", d => h - val(d.y)));
  } else if (horizontal) {
    g.append("g").attr("transform", `translate(0,${h})`).call(d3.axisBottom(val));
    g.append("g").call(d3.axisLeft(band));
    const sub = d3.scaleBand().domain(series.map((_, i) => i)).range([0, band.bandwidth()]).padding(0.05);
    series.forEach((s, i) => g.append("g").selectAll("rect").data(s.points).join("rect")
      .attr("class", `mark s${i}`).attr("x", 0).attr("width", d => val(d.y))
      .attr("y", d => band(d.x) + (kind === "horizontal_grouped_bar" ? sub(i) : 0))
      .attr("height", kind === "horizontal_grouped_bar" ? sub.bandwidth() : band.bandwidth()));
  } else if (kind === "bar_quantitative") {
    const yv = d3.scaleLinear().domain([0, ymax]).nice().range([h, 0]);
    g.append("g").attr("transform", `translate(0,${h})`).call(d3.axisBottom(xq).tickFormat(d3.format("d")));
    g.append("g").call(d3.axisLeft(yv));
    g.append("g").selectAll("rect").data(series[0].points).join("rect").attr("class", "mark s0")
      .attr("x", d => xq(d.x) - 10).attr("width", 20).attr("y", d => yv(d.y)).attr("height", d => h - yv(d.y));
  } else {
    const yv = kind === "area" ? d3.scaleLinear().domain([0, ymax]).nice().range([h, 0]) : yq;
    g.append("g").attr("transform", `translate(0,${h})`).call(d3.axisBottom(xq).tickFormat(d3.format("d")));
    g.append("g").call(d3.axisLeft(yv));
    series.forEach((s, i) => {
      if (kind === "line" || kind === "short_line")
        g.append("path").datum(s.points).attr("class", `line s${i}`).attr("d", d3.line().x(d => xq(d.x)).y(d => yv(d.y)));
      else if (kind === "area")
        g.append("path").datum(s.points).attr("class", `mark s${i}`).attr("d", d3.area().x(d => xq(d.x)).y0(h).y1(d => yv(d.y)));
      else {
        const sym = kind === "point" ? d3.symbolTriangle : d3.symbolCircle;
        const size = d => kind === "bubble" ? d.size * 40 : 64;
        g.append("g").selectAll("path").data(s.points).join("path")
          .attr("class", `${kind === "point" ? "hollow" : "mark"} s${i}`)
          .attr("transform", d => `translate(${xq(d.x)},${yv(d.y)})`)
          .attr("d", d => d3.symbol(sym, size(d))());
      }
    });
  }
  legend(); titles();
};
