// lpbot dashboard: draws the charts (Apache ECharts, served from the npm package) and keeps the
// page current: it asks /api/version every few seconds and, when the store changed (a
// snapshot, an alert, a state change), replaces the page's content without reloading.
"use strict";

function line(name, data, color, extra) {
  return { name, type: "line", data, symbol: "none", color, lineStyle: { color }, ...(extra || {}) };
}

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
      line("range low", d.points.map((p) => p.low), "#4f9d63", { step: "end" }),
      line("range high", d.points.map((p) => p.high), "#4f9d63", { step: "end" }),
      line("price", d.points.map((p) => p.price), "#1d2430", {
        markLine: { symbol: "none", label: { formatter: "rebalance" }, lineStyle: { color: "#d9534f", type: "dashed" }, data: marks },
      }),
    ],
  });
  const value = echarts.init(document.getElementById("value-chart"));
  value.setOption({
    ...common,
    yAxis: [
      { type: "value", scale: true, name: "USD" },
      { type: "value", scale: true, name: "net vs holding (USD)", splitLine: { show: false } },
    ],
    grid: { left: 70, right: 70, top: 30, bottom: 40 },
    series: [
      line("LP value", d.points.map((p) => Number(p.value)), "#2f6fd6"),
      line("hold the deposit", d.points.map((p) => Number(p.hold)), "#e08a2c"),
      line("net vs holding", d.points.map((p) => Number(p.net)), "#8e44ad", { yAxisIndex: 1, lineStyle: { color: "#8e44ad", type: "dotted" } }),
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
