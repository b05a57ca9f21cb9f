/* The consumption chart (cabinet/consumption.html): stacked bars of kWh per zone and a line of
   rubles charged on a second axis. Data come from <script id="consumption-data"> with numbers
   as strings; they become numbers here only to be drawn, and money is shown from its string. */
(function () {
  "use strict";
  var source = document.getElementById("consumption-data");
  var canvas = document.getElementById("consumption-chart");
  if (!source || !canvas || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);

  var ZONE_COLORS = {
    "Круглосуточно": "#4a7fc1",
    "День": "#f2b134",
    "Ночь": "#1d4f91",
    "Пик": "#d9534f",
    "Полупик": "#f2b134",
    "Без зоны": "#9aa7b4"
  };
  var SPARE_COLORS = ["#5bc0de", "#8e6cc1", "#7fb77e"];
  var MONEY_COLOR = "#33475b";
  var kwhFormat = new Intl.NumberFormat("ru-RU", { maximumFractionDigits: 3 });
  var axisFormat = new Intl.NumberFormat("ru-RU", { maximumFractionDigits: 0 });

  /* "12345.60" -> "12 345,60": the decimal string as is, grouped the Russian way. */
  function money(text) {
    var negative = text.charAt(0) === "-";
    var parts = text.replace("-", "").split(".");
    var whole = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, "\u00a0");
    return (negative ? "−" : "") + whole + "," + ((parts[1] || "") + "00").slice(0, 2);
  }

  var datasets = data.series.map(function (series, index) {
    var color = ZONE_COLORS[series.label] || SPARE_COLORS[index % SPARE_COLORS.length];
    return {
      type: "bar", label: series.label, data: series.values.map(Number), raw: series.values,
      backgroundColor: color, borderColor: color, stack: "kwh", yAxisID: "kwh",
      borderRadius: 2, maxBarThickness: 34, order: 2
    };
  });
  datasets.push({
    type: "line", label: "Начислено, руб.", data: data.amounts.map(Number), raw: data.amounts,
    borderColor: MONEY_COLOR, backgroundColor: "#fff", pointBackgroundColor: "#fff",
    pointBorderColor: MONEY_COLOR, pointRadius: 3, pointHoverRadius: 5, borderWidth: 2,
    tension: 0, yAxisID: "rub", order: 1
  });

  new Chart(canvas, {
    data: { labels: data.labels, datasets: datasets },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: { position: "bottom", labels: { usePointStyle: true, boxWidth: 10,
                  sort: function (a, b) { return a.datasetIndex - b.datasetIndex; } } },
        tooltip: {
          callbacks: {
            label: function (item) {
              var raw = item.dataset.raw[item.dataIndex];
              return item.dataset.yAxisID === "rub"
                ? " Начислено: " + money(raw) + " руб."
                : " " + item.dataset.label + ": " + kwhFormat.format(Number(raw)) + " кВт·ч";
            }
          }
        }
      },
      scales: {
        x: { stacked: true, grid: { display: false },
             ticks: { maxRotation: 60, autoSkip: true } },
        kwh: { type: "linear", position: "left", stacked: true, beginAtZero: true,
               title: { display: true, text: "кВт·ч" },
               ticks: { callback: function (v) { return axisFormat.format(v); } } },
        rub: { type: "linear", position: "right", beginAtZero: true,
               grid: { drawOnChartArea: false },
               title: { display: true, text: "руб." },
               ticks: { callback: function (v) { return axisFormat.format(v); } } }
      }
    }
  });
})();
