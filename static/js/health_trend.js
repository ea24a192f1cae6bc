// Draws the account page's 90-day health chart from the JSON the server embedded with json_script.
// The same points are in the table below the chart, for readers without the chart.
(function () {
  "use strict";
  var source = document.getElementById("health-trend");
  var target = document.getElementById("health-trend-chart");
  if (!source || !target || typeof Plotly === "undefined") {
    return;
  }
  var trend = JSON.parse(source.textContent);
  if (!trend || !trend.dates.length) {
    target.textContent = "No history yet.";
    return;
  }
  var colours = { green: "#1b7f3b", yellow: "#b7791f", red: "#c0392b", grey: "#7f8c8d" };
  Plotly.newPlot(
    target,
    [
      {
        x: trend.dates,
        y: trend.totals,
        type: "scatter",
        mode: "lines+markers",
        name: "Health",
        line: { color: "#34495e" },
        marker: { color: trend.bands.map(function (band) { return colours[band] || colours.grey; }) },
        hovertemplate: "%{x}: %{y:.2f}<extra></extra>",
      },
    ],
    {
      margin: { l: 40, r: 10, t: 10, b: 40 },
      height: 260,
      yaxis: { range: [0, 100], title: { text: "Health" } },
      xaxis: { type: "date" },
    },
    { displaylogo: false, responsive: true }
  );
})();
