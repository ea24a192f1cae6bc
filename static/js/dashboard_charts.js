// Portfolio and segment charts, drawn from JSON the server embedded with json_script. Each chart has
// a table with the same figures next to it, so the page reads the same without JavaScript.
(function () {
  "use strict";
  if (typeof Plotly === "undefined") {
    return;
  }
  var colours = { red: "#c0392b", yellow: "#b7791f", grey: "#7f8c8d", green: "#1b7f3b" };
  var labels = { red: "Red", yellow: "Yellow", grey: "No data", green: "Green" };
  var config = { displaylogo: false, responsive: true };

  function data(id) {
    var source = document.getElementById(id);
    return source ? JSON.parse(source.textContent) : null;
  }

  var trend = data("band-trend");
  var trendTarget = document.getElementById("band-trend-chart");
  if (trend && trendTarget && trend.dates.length) {
    var traces = ["red", "yellow", "grey", "green"].map(function (band) {
      return {
        x: trend.dates, y: trend[band], name: labels[band], type: "bar",
        marker: { color: colours[band] },
        hovertemplate: "%{x}: %{y} " + labels[band].toLowerCase() + "<extra></extra>",
      };
    });
    Plotly.newPlot(trendTarget, traces, {
      barmode: "stack", height: 280, margin: { l: 50, r: 10, t: 10, b: 40 },
      xaxis: { type: "date" }, yaxis: { title: { text: "Accounts" } }, legend: { orientation: "h" },
    }, config);
  }

  var kpis = data("kpi-attainment");
  var kpiTarget = document.getElementById("kpi-attainment-chart");
  if (kpis && kpiTarget && kpis.names.length) {
    Plotly.newPlot(kpiTarget, [{
      x: kpis.attainment.map(function (v) { return v === null ? 0 : v; }),
      y: kpis.names, type: "bar", orientation: "h", name: "Accounts on target",
      marker: { color: kpis.met.map(function (m) { return m === null ? colours.grey : (m ? colours.green : colours.red); }) },
      hovertemplate: "%{y}: %{x:.1f}% of accounts on target<extra></extra>",
    }], {
      height: 60 + 40 * kpis.names.length, margin: { l: 260, r: 20, t: 10, b: 40 },
      xaxis: { range: [0, 100], title: { text: "% of accounts on target" } }, yaxis: { automargin: true },
    }, config);
  }
})();
