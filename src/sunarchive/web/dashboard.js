"use strict";
// The dashboard: live power from the WebSocket feed, everything else from the REST API every
// 10 s. "Today" is the site's local day (its time zone from /api/v1/status) of the newest data.
// A read token given as /#token=... is kept in sessionStorage and sent with every request.
// A series is named by its tag values; where a registry names it (a PS100 panel's name in
// ps100_panels, a lab or HOMEPOT device's), that name is shown, the series name its tooltip.

const MEASUREMENT = new URLSearchParams(location.search).get("measurement") || "ps100_readings";
const REFRESH_MS = 10000;
const HOUR_MS = 3600000;
const DAY_MS = 24 * HOUR_MS;
const COLORS = ["#2563eb", "#16a34a", "#db2777", "#7c3aed", "#0891b2", "#ea580c", "#65a30d"];
const TOTAL_COLOR = "#f59e0b";

const state = {
  token: takeToken(),
  timezone: "UTC",
  tags: [],          // the measurement's tag names; a series is named by its values joined by "/"
  powerField: "power",
  panels: [],        // series names, as /api/v1/energy names them
  labels: {},        // series name → its registry name, from /api/v1/series/names
  first: {},         // series name → first stored second (ms)
  last: {},          // series name → last stored second (ms)
  live: {},          // series name → {watts, time (ms)}
  recent: [],        // [time (ms), total watts] of the last two minutes, from the live feed
  peak: 0,           // today's highest power of one panel: the scale of the live bars
  curve: null,       // inputs of the two charts, kept to redraw them on resize
  days: null,
};

const $ = (id) => document.getElementById(id);
const colorOf = (name) => COLORS[state.panels.indexOf(name) % COLORS.length];
const nameOf = (tags) => state.tags.map((t) => tags[t]).join("/");
const labelOf = (name) => (Object.hasOwn(state.labels, name) ? state.labels[name] : name);
const iso = (ms) => new Date(ms).toISOString();
const fmtW = (watts) => (watts == null ? "–" : `${watts.toFixed(1)} W`);
const fmtKwh = (kwh) => `${kwh.toFixed(kwh < 10 ? 3 : 1)} kWh`;

function takeToken() {
  const match = location.hash.match(/[#&]token=([^&]*)/);
  if (match) {
    sessionStorage.setItem("sunarchive-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("sunarchive-token");
}

async function api(path, params = {}) {
  const query = new URLSearchParams(params).toString();
  const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
  const response = await fetch(query ? `${path}?${query}` : path, { headers });
  if (response.status === 401) {
    throw new Error("This server needs a read token: open the dashboard as /#token=YOUR_TOKEN");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${path}: ${body.error || response.status}`);
  return body;
}

// -- the site's calendar ------------------------------------------------------------------
function wall(ms, options) {
  return new Intl.DateTimeFormat(undefined, { timeZone: state.timezone, ...options })
    .format(new Date(ms));
}

// The site's wall clock at `ms` read as if it were UTC; minus `ms` that is the UTC offset.
function wallAsUtc(ms) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: state.timezone, hourCycle: "h23", year: "numeric", month: "numeric",
    day: "numeric", hour: "numeric", minute: "numeric", second: "numeric",
  }).formatToParts(new Date(ms));
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"),
                  get("second"));
}

// Start of the site's local day that holds `ms`.
function dayStart(ms) {
  const wallNow = new Date(wallAsUtc(ms));
  const midnight = Date.UTC(wallNow.getUTCFullYear(), wallNow.getUTCMonth(), wallNow.getUTCDate());
  let start = midnight;
  for (let i = 0; i < 2; i++) start = midnight - (wallAsUtc(start) - start);
  return start;
}

const dayLabel = (ms) => new Date(wallAsUtc(ms)).toISOString().slice(0, 10);

// -- rendering ------------------------------------------------------------------------------
function show(id, text, value, extra = {}) {
  const element = $(id);
  element.textContent = text;
  Object.assign(element.dataset, { value }, extra);
}

function notice(text) {
  $("notice").textContent = text || "";
  $("notice").hidden = !text;
}

function setConnection(text, kind) {
  $("connection").textContent = text;
  $("connection").className = `connection ${kind}`;
}

// One row per panel in list `ul` (name, bar, value and an optional detail line); the value
// element carries `data-testid="<prefix>-<panel>"` and the raw number in `data-value`.
function setBar(ul, prefix, name, fraction, text, value, extra = {}, detail = "") {
  if (ul.dataset.panels !== state.panels.join()) {
    ul.replaceChildren();
    ul.dataset.panels = state.panels.join();
  }
  let li = ul.querySelector(`li[data-name="${CSS.escape(name)}"]`);
  if (!li) {
    li = document.createElement("li");
    li.dataset.name = name;
    li.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span>' +
      '</span><span class="value"></span><span class="detail muted" hidden></span>';
    li.querySelector(".value").dataset.testid = `${prefix}-${name}`;
    li.querySelector(".fill").style.background = colorOf(name);
    ul.append(li);
  }
  const label = li.querySelector(".name");
  if (label.textContent !== labelOf(name)) {
    label.textContent = labelOf(name);
    label.title = labelOf(name) === name ? "" : name;
    li.dataset.label = labelOf(name);
  }
  li.querySelector(".fill").style.width = `${Math.max(0, Math.min(1, fraction || 0)) * 100}%`;
  const element = li.querySelector(".value");
  element.textContent = text;
  Object.assign(element.dataset, { value }, extra);
  li.querySelector(".detail").textContent = detail;
  li.querySelector(".detail").hidden = !detail;
}

function renderLive() {
  const newest = Math.max(0, ...Object.values(state.live).map((l) => l.time));
  const scale = Math.max(state.peak, ...Object.values(state.live).map((l) => l.watts || 0));
  let total = 0;
  for (const name of state.panels) {
    const live = state.live[name];
    const watts = live ? live.watts : null;
    total += watts || 0;
    setBar($("live-panels"), "panel-power", name, scale ? watts / scale : 0, fmtW(watts),
           watts ?? "", live ? { time: iso(live.time) } : {});
  }
  if (!newest) return;
  show("total-power", fmtW(total), total, { time: iso(newest) });
  $("live-time").textContent = `at ${wall(newest, { timeStyle: "medium" })} (${state.timezone})`;
  if (newest > (state.recent.at(-1)?.[0] ?? 0)) {
    state.recent.push([newest, total]);
    state.recent = state.recent.filter(([t]) => t > newest - 2 * 60000);
    drawRecent();
  }
}

// The total of the last two minutes, one point a second.
function drawRecent() {
  const end = state.recent.at(-1)[0];
  Charts.line($("live-chart"), {
    xMin: end - 2 * 60000, xMax: end, unit: "W",
    series: [{ name: "total", color: TOTAL_COLOR, width: 2, points: state.recent }],
    ticks: [{ x: end - 2 * 60000, label: "−2 min" }, { x: end - 60000, label: "−1 min" },
            { x: end, label: "now" }],
  });
}

function takeLive(row) {
  const name = nameOf(row.tags);
  const time = Date.parse(row.time);
  if (state.live[name] && state.live[name].time > time) return;
  state.live[name] = { watts: row.values[`${state.powerField}_avg`], time };
  addPanel(name);
}

function addPanel(name) {
  if (state.panels.includes(name)) return;
  state.panels.push(name);
  state.panels.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}

function renderCurve(rows, start, end) {
  const perPanel = {};
  const total = new Map();
  state.peak = 0;
  for (const row of rows) {
    const watts = row[`${state.powerField}_avg`];
    if (watts == null) continue;
    const time = Date.parse(row.time);
    (perPanel[nameOf(row)] ||= []).push([time, watts]);
    total.set(time, (total.get(time) || 0) + watts);
    state.peak = Math.max(state.peak, row[`${state.powerField}_max`] ?? watts);
  }
  const byTime = (a, b) => a[0] - b[0];
  state.curve = {
    xMin: start, xMax: end, unit: "W",
    series: [
      ...state.panels.map((name) => ({ name, color: colorOf(name),
                                       points: (perPanel[name] || []).sort(byTime) })),
      { name: "total", color: TOTAL_COLOR, width: 2.5, points: [...total].sort(byTime) },
    ],
  };
  $("today-legend").replaceChildren(...state.curve.series.map((s) => {
    const item = document.createElement("span");
    item.innerHTML = `<span class="swatch" style="background:${s.color}"></span>`;
    item.append(labelOf(s.name));
    if (labelOf(s.name) !== s.name) item.title = s.name;
    return item;
  }));
}

function renderEnergy(body, monthStart, today) {
  const byDay = Object.fromEntries(body.rows.map((row) => [row.period, row]));
  const labels = Array.from({ length: 30 }, (_, i) => dayLabel(monthStart + (i + 0.5) * DAY_MS));
  state.days = { labels, values: labels.map((day) => byDay[day]?.total_kwh || 0) };
  const row = byDay[today] || { total_kwh: 0, series: {} };
  show("today-kwh", fmtKwh(row.total_kwh), row.total_kwh);
  const most = Math.max(0, ...Object.values(row.series));
  for (const name of state.panels) {
    const kwh = row.series[name] || 0;
    setBar($("panel-kwh"), "panel-kwh", name, most ? kwh / most : 0, fmtKwh(kwh), kwh);
  }
}

// Samples stored today against the nominal rate × the seconds since the series started today.
// The nominal rate is the best 5-minute bucket's samples per covered second, rounded.
function renderCompleteness(rows, start) {
  const sums = {};
  let hz = 0;
  for (const row of rows) {
    const sum = (sums[nameOf(row)] ||= { samples: 0, covered: 0 });
    sum.samples += row.sample_count || 0;
    sum.covered += row.covered_s || 0;
    if (row.covered_s) hz = Math.max(hz, row.sample_count / row.covered_s);
  }
  hz = Math.round(hz);
  for (const name of state.panels) {
    const { samples } = sums[name] || { samples: 0 };
    const from = Math.max(start, state.first[name] ?? start);
    const seconds = state.last[name] >= from ? (state.last[name] - from) / 1000 + 1 : 0;
    const expected = hz * seconds;
    const fraction = expected ? samples / expected : 0;
    setBar($("completeness"), "completeness", name, fraction, `${(fraction * 100).toFixed(1)} %`,
           fraction, { samples, expected },
           `${samples.toLocaleString("en")} of ${expected.toLocaleString("en")} samples ` +
           `at ${hz} Hz`);
  }
}

function renderEvents(events) {
  const items = events.map((event) => {
    const li = document.createElement("li");
    for (const [cls, text] of [
      ["muted", wall(Date.parse(event.time), { dateStyle: "short", timeStyle: "medium" })],
      ["kind", event.kind], ["message", event.message]]) {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = text;
      li.append(span);
    }
    return li;
  });
  if (!items.length) {
    items.push(document.createElement("li"));
    items[0].className = "empty";
    items[0].textContent = "No events: no gaps, late samples or sources going offline.";
  }
  $("events").replaceChildren(...items);
}

function drawCharts() {
  const canvas = $("today-chart");
  if (state.curve) {
    const every = (canvas.clientWidth < 500 ? 6 : 3) * HOUR_MS;
    const ticks = [];
    for (let t = state.curve.xMin; t <= state.curve.xMax; t += every) {
      const label = wall(t, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
      ticks.push({ x: t, label });
    }
    Charts.line(canvas, { ...state.curve, ticks });
  }
  if (state.days) {
    const narrow = $("days-chart").clientWidth < 500;
    const wh = Math.max(...state.days.values) < 0.1;   // small numbers read better in Wh
    Charts.bars($("days-chart"), {
      labels: state.days.labels, values: state.days.values.map((v) => (wh ? v * 1000 : v)),
      unit: wh ? "Wh" : "kWh", highlight: state.days.values.length - 1,
      color: { normal: "#93c5fd", highlight: TOTAL_COLOR }, labelEvery: narrow ? 7 : 3,
      shortLabel: (day) => `${Number(day.slice(8))}.${Number(day.slice(5, 7))}.`,
    });
  }
}

// -- loading ----------------------------------------------------------------------------------
const objects = (body) => body.rows.map((row) =>
  Object.fromEntries(body.columns.map((column, i) => [column, row[i]])));

async function refresh() {
  const newest = Math.max(0, ...Object.values(state.live).map((l) => l.time));
  const start = dayStart(newest || Date.now());
  const end = dayStart(start + 1.5 * DAY_MS);
  const monthStart = dayStart(start - 29 * DAY_MS + DAY_MS / 2);
  const [series, names, curve, energy, events] = await Promise.all([
    api("/api/v1/series"),
    api("/api/v1/series/names", { measurement: MEASUREMENT }),
    api(`/api/v1/measurements/${encodeURIComponent(MEASUREMENT)}`, {
      tier: "5min", start: iso(start), end: iso(end),
      fields: `${state.powerField}_avg,${state.powerField}_max,covered_s,sample_count` }),
    api("/api/v1/energy", { measurement: MEASUREMENT, period: "day", start: iso(monthStart),
                            end: iso(end) }),
    api("/api/v1/events", { limit: 8 }),
  ]);
  for (const s of series.filter((s) => s.measurement === MEASUREMENT)) {
    const name = nameOf(s.tags);
    addPanel(name);
    state.first[name] = Date.parse(s.first);
    state.last[name] = Date.parse(s.last);
  }
  state.labels = Object.fromEntries(names.names.map((n) => [nameOf(n.tags), n.name]));
  const rows = objects(curve);
  renderCurve(rows, start, end);
  renderEnergy(energy, monthStart, dayLabel(start + DAY_MS / 2));
  renderCompleteness(rows, start);
  renderEvents(events);
  renderLive();
  drawCharts();
  $("day").textContent = `${wall(start + DAY_MS / 2, { dateStyle: "full" })} · ${state.timezone}`;
}

// Refreshes run one after another, so an older answer never overwrites a newer one.
let queue = Promise.resolve();
function refreshInTurn() {
  queue = queue.catch(() => {}).then(refresh);
  return queue;
}

async function refreshSafely() {
  try {
    await refreshInTurn();
    notice("");
  } catch (error) {
    notice(error.message);
  }
}

function connectLive() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = state.token ? `?token=${encodeURIComponent(state.token)}` : "";
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/live${query}`);
  socket.onopen = () => socket.send(JSON.stringify({ subscribe: [{ measurement: MEASUREMENT }] }));
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.error) return notice(message.error);
    (message.rows || []).forEach(takeLive);
    renderLive();
    setConnection("live", "live");
  };
  socket.onclose = () => {
    setConnection("reconnecting…", "down");
    setTimeout(connectLive, 2000);
  };
}

async function init() {
  try {
    const [status, measurements, latest] = await Promise.all([
      api("/api/v1/status"), api("/api/v1/measurements"),
      api("/api/v1/latest", { measurement: MEASUREMENT })]);
    const profile = measurements.find((m) => m.measurement === MEASUREMENT);
    const power = profile && profile.fields.find((f) => f.kind === "power");
    if (!power) throw new Error(`measurement ${MEASUREMENT} has no power field`);
    state.timezone = status.timezone;
    state.tags = profile.tags;
    state.powerField = power.name;
    latest.forEach(takeLive);
  } catch (error) {
    notice(error.message);
    setConnection("no data", "down");
    setTimeout(init, REFRESH_MS);
    return;
  }
  renderLive();
  connectLive();
  await refreshSafely();
  setInterval(refreshSafely, REFRESH_MS);
}

let resizing = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => {
    drawCharts();
    if (state.recent.length) drawRecent();
  }, 150);
});
window.dashboard = { state, refresh: refreshInTurn };   // for tests and the browser console
init();
