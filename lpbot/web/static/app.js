// lpbot dashboard: draws the charts (Apache ECharts, served from the npm package) and keeps the
// page current: it asks /api/version every few seconds and, when the store changed (a
// snapshot, an alert, a state change), replaces the page's content without reloading.
"use strict";

function drawCharts() {
  const data = document.getElementById("chart-data");
  if (!data || typeof echarts === "undefined") return;
  const d = JSON.parse(data.textContent);
  const times = d.points.map((p) => p.at.slice(0, 16).replace("T", " "));
  const marks = d.points
    .map((p, i) => ({ block: p.block, i }))
    .filter((p, i, all) => d.rebalances.some((b) => b <= p.block && (i === 0 || b > all[i - 1].block)))
    .map((p) => ({ xAxis: times[p.i] }));
  const common = {
    animation: false,
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 70, right: 20, top: 30, bottom: 40 },
    xAxis: { type: "category", data: times, name: "time (UTC)", nameLocation: "middle", nameGap: 25 },
  };
  const price = echarts.init(document.getElementById("price-chart"));
  price.setOption({
    ...common,
    yAxis: { type: "value", scale: true, name: d.quote },
    series: [
      { name: "range low", type: "line", data: d.points.map((p) => p.low), step: "end", symbol: "none", lineStyle: { color: "#7bc48c" } },
      { name: "range high", type: "line", data: d.points.map((p) => p.high), step: "end", symbol: "none", lineStyle: { color: "#7bc48c" } },
      { name: "price", type: "line", data: d.points.map((p) => p.price), symbol: "none", lineStyle: { color: "#1d2430" },
        markLine: { symbol: "none", label: { formatter: "rebalance" }, lineStyle: { color: "#d9534f", type: "dashed" }, data: marks } },
    ],
  });
  const value = echarts.init(document.getElementById("value-chart"));
  value.setOption({
    ...common,
    yAxis: { type: "value", scale: true, name: "USD" },
    series: [
      { name: "LP value", type: "line", data: d.points.map((p) => Number(p.value)), symbol: "none" },
      { name: "hold", type: "line", data: d.points.map((p) => Number(p.hold)), symbol: "none" },
      { name: "fees", type: "line", data: d.points.map((p) => Number(p.fees)), symbol: "none" },
    ],
  });
  window.addEventListener("resize", () => { price.resize(); value.resize(); });
}

let version = null;

async function poll() {
  try {
    const r = await fetch("/api/version", { credentials: "same-origin" });
    if (!r.ok) return;
    const v = (await r.json()).version;
    if (version !== null && v !== version) {
      const page = await fetch(location.pathname + location.search, {
        credentials: "same-origin",
        headers: { "X-Lpbot-Fragment": "1" },
      });
      if (page.ok) {
        const open = [...document.querySelectorAll("details[open]")].map((e) => e.id);
        document.getElementById("live").innerHTML = await page.text();
        open.forEach((id) => { const e = document.getElementById(id); if (e) e.open = true; });
        drawCharts();
        const state = document.getElementById("live-state");
        state.textContent = "updated " + new Date().toLocaleTimeString();
        state.classList.add("updated");
      }
    }
    version = v;
  } catch (e) {
    document.getElementById("live-state").textContent = "offline";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  drawCharts();
  const seconds = Number(document.body.dataset.pollSeconds || "5");
  poll();
  setInterval(poll, seconds * 1000);
});
