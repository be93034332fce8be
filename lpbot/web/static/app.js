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
      line("hold 50/50", d.points.map((p) => Number(p.hold_5050)), "#b0b7c3", { lineStyle: { color: "#b0b7c3", type: "dashed" } }),
      // the passive full-range benchmark: none before the first snapshot with fee growth
      line("full range", d.points.map((p) => (p.full_range === null ? null : Number(p.full_range))), "#8c564b"),
      line("net vs holding", d.points.map((p) => Number(p.net)), "#8e44ad", { yAxisIndex: 1, lineStyle: { color: "#8e44ad", type: "dotted" } }),
    ],
  });
  window.addEventListener("resize", () => { price.resize(); value.resize(); });
}

function drawLiquidity() {
  const data = document.getElementById("liquidity-data");
  const box = document.getElementById("liquidity-chart");
  if (!data || !box || typeof echarts === "undefined") return;
  const d = JSON.parse(data.textContent);
  const digits = (x) => (x >= 1000 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toPrecision(4));
  const labels = d.bars.map((b) => digits(b.price));
  const at = (tick) => {
    const i = d.bars.findIndex((b) => b.tick <= tick && tick < b.end);
    return i < 0 ? (tick < d.bars[0].tick ? 0 : d.bars.length - 1) : i;
  };
  const chart = echarts.init(box);
  chart.setOption({
    animation: false,
    tooltip: { trigger: "axis" },
    grid: { left: 90, right: 20, top: 30, bottom: 45 },
    // prices rise to the right, whichever way the ticks run
    xAxis: { type: "category", data: labels, name: d.quote, nameLocation: "middle", nameGap: 28,
      inverse: d.bars.length > 1 && d.bars[1].price < d.bars[0].price },
    yAxis: { type: "value", name: "liquidity", axisLabel: { formatter: (v) => (v >= 1e6 ? v.toExponential(1) : String(v)) } },
    series: [{
      name: "liquidity",
      type: "bar",
      barCategoryGap: "5%",
      data: d.bars.map((b) => ({ value: Number(b.liquidity), itemStyle: { color: b.in_range ? "#5aa0ff" : "#9db4d6" } })),
      markArea: { itemStyle: { color: "rgba(79, 157, 99, 0.15)" }, label: { formatter: "range", position: "insideTopLeft" },
        data: [[{ xAxis: labels[at(d.tick_lower)] }, { xAxis: labels[at(d.tick_upper - 1)] }]] },
      markLine: { symbol: "none", label: { formatter: "price", position: "insideEndTop" }, lineStyle: { color: "#1d2430", width: 2 },
        data: [{ xAxis: labels[at(d.tick)] }] },
    }],
  });
  window.addEventListener("resize", () => chart.resize());
}

async function loadParts() {
  // the chain's part of a page, read after it (a slow RPC never holds the page)
  for (const part of document.querySelectorAll("[data-src]")) {
    try {
      const r = await fetch(part.dataset.src, { credentials: "same-origin", headers: { "X-Lpbot-Fragment": "1" } });
      part.innerHTML = r.ok ? await r.text() : '<p class="warn">' + r.status + " " + r.statusText + "</p>";
    } catch (e) {
      part.innerHTML = '<p class="warn">the dashboard does not answer</p>';
    }
    part.dataset.loaded = "1";
  }
  drawLiquidity();
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
        loadParts();
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
  loadParts();
  const seconds = Number(document.body.dataset.pollSeconds || "5");
  poll();
  setInterval(poll, seconds * 1000);
});
