// Draws the compliance dashboard's audit pass rate per segment from the JSON the server embedded
// with json_script. The same figures are in the table below the chart, for readers without it.
(function () {
  "use strict";
  var source = document.getElementById("pass-rate-data");
  var target = document.getElementById("pass-rate-chart");
  if (!source || !target || typeof Plotly === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  if (!data || !data.segments.length) {
    target.textContent = "No audits in the last 365 days.";
    return;
  }
  var labels = data.segments.map(function (_, i) {
    return data.passed[i] + " of " + data.audits[i] + " passed";
  });
  Plotly.newPlot(
    target,
    [
      {
        x: data.segments,
        y: data.pass_rates,
        type: "bar",
        name: "Pass rate",
        marker: { color: "#1f4e79" },
        text: data.pass_rates.map(function (rate) { return rate.toFixed(1) + "%"; }),
        textposition: "auto",
        customdata: labels,
        hovertemplate: "%{x}: %{y:.1f}% (%{customdata})<extra></extra>",
      },
    ],
    {
      margin: { l: 50, r: 10, t: 10, b: 60 },
      height: 280,
      yaxis: { range: [0, 100], title: { text: "Pass rate (%)" } },
    },
    { displaylogo: false, responsive: true }
  );
})();
