// netwarden dashboard: polls the JSON API and draws three SVG plots and two tables.
// No framework and no external files; see docs/http.md for the endpoints it reads.
"use strict";

const $ = (id) => document.getElementById(id);
const NS = "http://www.w3.org/2000/svg";
const REFRESH_MS = 5000;
let token = localStorage.getItem("netwarden_token") || "";
const m = location.hash.match(/token=([^&]+)/);
if (m) { token = decodeURIComponent(m[1]); localStorage.setItem("netwarden_token", token); history.replaceState(null, "", location.pathname); }

async function api(path) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const r = await fetch(path, { headers });
  if (r.status === 401) { $("login").style.display = "block"; throw new Error("unauthorized"); }
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}
$("save").onclick = () => { token = $("token").value.trim(); localStorage.setItem("netwarden_token", token); $("login").style.display = "none"; refresh(); };

// ---- formatting ----
function si(v, unit) {
  if (v == null || !isFinite(v)) return "–";
  const a = Math.abs(v), p = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [d, s] of p) if (a >= d) return (v / d).toFixed(a / d >= 100 ? 0 : 1) + " " + s + unit;
  return (a >= 100 ? v.toFixed(0) : v.toPrecision(2)) + " " + unit;
}
function sci(v) { return v == null ? "–" : v >= 0.01 && v < 1000 ? v.toPrecision(3) : v.toExponential(1); }
function hhmm(ms) { const d = new Date(ms); return d.toTimeString().slice(0, d.getTime() % 60000 ? 8 : 5); }
function ago(ms) { const s = (Date.now() - ms) / 1000; return s < 90 ? Math.round(s) + " s ago" : s < 5400 ? Math.round(s / 60) + " min ago" : new Date(ms).toLocaleString(); }
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]); }

// ---- a tiny SVG plotter ----
function el(tag, attrs, parent, text) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text != null) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
function niceTicks(lo, hi, n) {
  const span = hi - lo || 1, step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => span / s <= n) || 10 * mag;
  const out = []; for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) out.push(v);
  return out;
}
// opts: {x0,x1, y0,y1, ylog, lines:[{pts:[[x,y]], color, width}], shade:[[xa,xb]], hline:{y,color}, bars, xfmt, yfmt, empty}
function plot(svg, o) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const vb = svg.viewBox.baseVal, W = vb.width, H = vb.height, L = 64, R = 14, T = 10, B = 26;
  const pw = W - L - R, ph = H - T - B;
  if (o.empty) { el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, svg, o.empty); return; }
  const ty = (y) => o.ylog ? Math.log10(Math.max(y, 1e-12)) : y;
  const Y0 = ty(o.y0), Y1 = ty(o.y1);
  const X = (x) => L + (x - o.x0) / (o.x1 - o.x0 || 1) * pw;
  const Y = (y) => T + ph - (ty(y) - Y0) / (Y1 - Y0 || 1) * ph;
  el("rect", { x: L, y: T, width: pw, height: ph, fill: "#fbfbfd", stroke: "#e3e6eb" }, svg);
  for (const [a, b] of o.shade || []) {
    const xa = Math.max(L, X(a)), xb = Math.min(L + pw, X(b));
    if (xb > xa - 2) el("rect", { x: xa, y: T, width: Math.max(3, xb - xa), height: ph, fill: "var(--anom)", class: "anomaly" }, svg);
  }
  const yt = o.ylog ? niceTicks(Math.ceil(Y0), Math.floor(Y1), 6).map((e) => Math.pow(10, e)) : niceTicks(o.y0, o.y1, 5);
  for (const v of yt) {
    const y = Y(v); if (y < T - 1 || y > T + ph + 1) continue;
    el("line", { x1: L, x2: L + pw, y1: y, y2: y, stroke: "#eceef2" }, svg);
    el("text", { x: L - 6, y: y + 4, "text-anchor": "end" }, svg, (o.yfmt || sci)(v));
  }
  for (const v of o.xticks || niceTicks(o.x0, o.x1, 6)) {
    const x = X(v); if (x < L - 1 || x > L + pw + 1) continue;
    el("line", { x1: x, x2: x, y1: T + ph, y2: T + ph + 4, stroke: "#9aa3b2" }, svg);
    el("text", { x, y: H - 8, "text-anchor": "middle" }, svg, (o.xfmt || String)(v));
  }
  for (const b of o.bars || []) {
    const x = X(b[0]), w = Math.max(1, X(b[1]) - x - 1), y = Y(Math.max(b[2], o.y0));
    el("rect", { x, y, width: w, height: T + ph - y, fill: b[3] || "var(--err)", class: "bar" }, svg);
  }
  for (const line of o.lines || []) {
    let d = "", pen = false;
    for (const [x, y] of line.pts) {
      if (y == null || !isFinite(y)) { pen = false; continue; }
      d += (pen ? "L" : "M") + X(x).toFixed(1) + " " + Y(Math.min(Math.max(y, o.y0), o.y1)).toFixed(1);
      pen = true;
    }
    if (d) el("path", { d, fill: "none", stroke: line.color, "stroke-width": line.width || 1.6, "stroke-linejoin": "round", class: "series" }, svg);
    // Few points (a burst of seconds in a quarter hour): mark each so none is invisible.
    if (line.pts.length <= 120) for (const [x, y] of line.pts) {
      if (y == null || !isFinite(y)) continue;
      el("circle", { cx: X(x).toFixed(1), cy: Y(Math.min(Math.max(y, o.y0), o.y1)).toFixed(1), r: 2.6, fill: line.color, class: "series" }, svg);
    }
  }
  if (o.hline) {
    const y = Y(o.hline.y);
    el("line", { x1: L, x2: L + pw, y1: y, y2: y, stroke: o.hline.color, "stroke-width": 1.5, "stroke-dasharray": "6 4", class: "threshold" }, svg);
  }
  if (o.vline) {
    const x = X(o.vline.x);
    el("line", { x1: x, x2: x, y1: T, y2: T + ph, stroke: o.vline.color, "stroke-width": 1.5, "stroke-dasharray": "6 4", class: "threshold" }, svg);
  }
}
function timeAxis(x0, x1) {
  const spanS = (x1 - x0) / 1000, steps = [10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
  const step = 1000 * (steps.find((s) => spanS / s <= 7) || 86400);
  const t = []; for (let v = Math.ceil(x0 / step) * step; v <= x1; v += step) t.push(v);
  return t;
}
function logRange(values, thr) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) if (v > 0 && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (thr) { lo = Math.min(lo, thr); hi = Math.max(hi, thr); }
  if (!isFinite(lo)) return [1e-4, 1];
  return [Math.pow(10, Math.floor(Math.log10(lo)) - 0), Math.pow(10, Math.ceil(Math.log10(hi * 1.5)))];
}
// Merges timestamps of anomalous points into spans.
function spans(ts, stepMs) {
  const out = [];
  for (const t of ts.sort((a, b) => a - b)) {
    const last = out[out.length - 1];
    if (last && t - last[1] <= stepMs * 1.5) last[1] = t; else out.push([t - stepMs / 2, t]);
  }
  for (const s of out) s[1] += stepMs / 2;
  return out;
}

// ---- drawing the three plots ----
function drawHistogram(h, thr, sub) {
  const counts = h.counts, per = h.bins_per_decade, lo = h.log10_min;
  let first = counts.findIndex((c) => c > 0), last = counts.length - 1 - [...counts].reverse().findIndex((c) => c > 0);
  const total = counts.reduce((a, b) => a + b, 0);
  $("dist-sub").textContent = sub + ", " + total.toLocaleString() + " scored";
  if (!total) { plot($("dist-svg"), { empty: "nothing scored yet" }); return; }
  const tl = thr ? Math.log10(thr) : null;
  first = Math.min(first, tl != null ? Math.floor((tl - lo) * per) - 2 : first); last = Math.max(last, tl != null ? Math.ceil((tl - lo) * per) + 2 : last);
  first = Math.max(0, first - 1); last = Math.min(counts.length - 1, last + 1);
  const bars = [];
  for (let i = first; i <= last; i++) if (counts[i]) bars.push([lo + i / per, lo + (i + 1) / per, counts[i], tl != null && lo + i / per >= tl ? "var(--thr)" : "var(--err)"]);
  const maxc = Math.max(...counts);
  const xt = []; for (let e = Math.ceil(lo + first / per); e <= lo + (last + 1) / per; e++) xt.push(e);
  plot($("dist-svg"), { x0: lo + first / per, x1: lo + (last + 1) / per, y0: 0.8, y1: Math.pow(10, Math.ceil(Math.log10(maxc * 1.2))), ylog: true,
    bars, xticks: xt, xfmt: (e) => "1e" + e, yfmt: (v) => si(v, "").trim(), vline: tl != null ? { x: tl, color: "var(--thr)" } : null });
}

async function drawFlows() {
  const d = await api("/history/flows?since=15m");
  const now = Date.now(), x0 = d.since_ms, x1 = Math.max(now, x0 + 1);
  // points: [ts_ms, flows, anomalous, max_error, mean_error]
  const pts = d.points.map((p) => ({ ts_ms: p[0], flows: p[1], anomalous: p[2], max_error: p[3], mean_error: p[4] })), thr = d.threshold;
  $("traffic-sub").textContent = "flows scored per second, all exporters";
  $("traffic-legend").innerHTML = '<i style="background:var(--in)"></i>flows/s<i style="background:var(--thr)"></i>anomalous/s<i style="background:var(--anom)"></i>anomalous';
  const shade = spans(pts.filter((p) => p.anomalous > 0).map((p) => p.ts_ms), 1000);
  const ymax = Math.max(1, ...pts.map((p) => p.flows));
  plot($("traffic-svg"), pts.length ? { x0, x1, y0: 0, y1: ymax * 1.1, shade, xticks: timeAxis(x0, x1), xfmt: hhmm, yfmt: (v) => si(v, ""),
    lines: [{ pts: pts.map((p) => [p.ts_ms, p.flows]), color: "var(--in)" }, { pts: pts.map((p) => [p.ts_ms, p.anomalous]), color: "var(--thr)" }] } : { empty: "no flows in the last 15 minutes" });
  const errs = pts.map((p) => p.max_error);
  const [e0, e1] = logRange(errs.concat(pts.map((p) => p.mean_error)), thr);
  plot($("error-svg"), pts.length ? { x0, x1, y0: e0, y1: e1, ylog: true, shade, xticks: timeAxis(x0, x1), xfmt: hhmm,
    lines: [{ pts: pts.map((p) => [p.ts_ms, p.max_error]), color: "var(--err)" }, { pts: pts.map((p) => [p.ts_ms, p.mean_error]), color: "#b9a6ea", width: 1 }],
    hline: thr ? { y: thr, color: "var(--thr)" } : null } : { empty: "no flows scored yet" });
  drawHistogram(d.histogram, thr, "flow_ae, per flow");
  $("talkers").innerHTML = d.top_talkers.length ? "<table><tr><th>source</th><th class=num>bytes</th><th class=num>flows</th><th class=num>anomalous</th></tr>" +
    d.top_talkers.map((t) => `<tr><td>${esc(t.addr)}</td><td class=num>${si(t.bytes, "B")}</td><td class=num>${t.flows.toLocaleString()}</td><td class=num>${t.anomalous ? '<span class="sev high">' + t.anomalous + "</span>" : 0}</td></tr>`).join("") + "</table>"
    : '<div class="empty">no flows in the last 5 minutes</div>';
}

async function drawInterface(target, ifName) {
  const q = "target=" + encodeURIComponent(target) + "&if_name=" + encodeURIComponent(ifName);
  const [d, f] = await Promise.all([api("/history/interface?since=6h&" + q), api("/history/flows?since=1m")]);
  const s = d.samples, thr = d.threshold; // samples: [ts_ms, in_bps, out_bps]
  const x0 = s.length ? s[0][0] : d.since_ms, x1 = Math.max(s.length ? s[s.length - 1][0] : d.until_ms, x0 + 1);
  $("traffic-sub").textContent = target + " " + ifName;
  $("traffic-legend").innerHTML = '<i style="background:var(--in)"></i>in<i style="background:var(--out)"></i>out<i style="background:var(--anom)"></i>anomalous';
  const step = s.length > 1 ? (s[s.length - 1][0] - s[0][0]) / (s.length - 1) : 10000;
  const sc = d.scores.map((p) => ({ ts_ms: p[0], error: p[1], anomalous: p[2] })); // [ts_ms, error, anomalous]
  const shade = spans(sc.filter((p) => p.anomalous).map((p) => p.ts_ms), step);
  for (const a of d.alerts) { const i = a.subject; shade.push([i.window_last_ms - step, i.window_last_ms + step / 2]); }
  const ymax = Math.max(1, ...s.map((r) => Math.max(r[1] || 0, r[2] || 0)));
  plot($("traffic-svg"), s.length ? { x0, x1, y0: 0, y1: ymax * 1.1, shade, xticks: timeAxis(x0, x1), xfmt: hhmm, yfmt: (v) => si(v, "b/s"),
    lines: [{ pts: s.map((r) => [r[0], r[1]]), color: "var(--in)" }, { pts: s.map((r) => [r[0], r[2]]), color: "var(--out)" }] } : { empty: "no stored samples for this interface" });
  const [e0, e1] = logRange(sc.map((p) => p.error), thr);
  plot($("error-svg"), sc.length ? { x0, x1, y0: e0, y1: e1, ylog: true, shade, xticks: timeAxis(x0, x1), xfmt: hhmm,
    lines: [{ pts: sc.map((p) => [p.ts_ms, p.error]), color: "var(--err)" }], hline: thr ? { y: thr, color: "var(--thr)" } : null } : { empty: "no windows scored yet (a window needs 50 polls)" });
  drawHistogram(d.histogram, thr, "series_ae, per window, all interfaces");
  $("talkers").innerHTML = f.top_talkers.length ? "<table><tr><th>source</th><th class=num>bytes</th><th class=num>flows</th></tr>" +
    f.top_talkers.map((t) => `<tr><td>${esc(t.addr)}</td><td class=num>${si(t.bytes, "B")}</td><td class=num>${t.flows.toLocaleString()}</td></tr>`).join("") + "</table>" : '<div class="empty">no flows in the last 5 minutes</div>';
}

function subject(a) {
  const s = a.subject, i = a.incident;
  if (i) return `${esc(i.initiator)} → ${esc(i.target || "many hosts")} <small>(${esc(i.pattern)}, ${i.flows} flows, ${i.update ? "update " + i.update : "new"})</small>`;
  if (s.kind === "flow") return `${esc(s.src_addr)} → ${esc(s.dst_addr)}:${s.dst_port} <small>(${s.protocol === 6 ? "tcp" : s.protocol === 17 ? "udp" : "proto " + s.protocol})</small>`;
  if (s.kind === "arp") return `${esc(s.attacker_mac)}${s.attacker_ip ? " (" + esc(s.attacker_ip) + ")" : ""} → ${esc((s.impersonated || []).join(", "))} <small>(arp ${esc(s.rule)})</small>`;
  return `${esc(s.target)} ${esc(s.if_name)} <small>(${esc(s.direction)})</small>`;
}

async function drawAlerts() {
  const d = await api("/alerts?limit=15");
  $("alerts").innerHTML = d.alerts.length ? "<table id=alerts-table><tr><th>when</th><th>severity</th><th>detector</th><th>subject</th><th class=num>score / threshold</th><th>summary</th></tr>" +
    d.alerts.map((a) => `<tr class=alert><td title="${esc(a.ts)}">${ago(a.ts_ms)}</td><td><span class="sev ${esc(a.severity)}">${esc(a.severity)}</span></td><td>${esc(a.detector)}</td><td>${subject(a)}</td><td class=num>${sci(a.score)} / ${sci(a.threshold)}</td><td>${esc(a.summary).slice(0, 160)}</td></tr>`).join("") + "</table>"
    : '<div class="empty">no alerts</div>';
}

async function drawHeader() {
  const [h, models] = await Promise.all([api("/health"), api("/models")]);
  $("where").textContent = h.site + " / " + h.device + " · up " + Math.round(h.uptime_s / 60) + " min";
  const mq = $("mqtt"); mq.textContent = h.mqtt_connected ? "MQTT connected" : "MQTT not connected"; mq.className = "pill " + (h.mqtt_connected ? "ok" : "bad");
  const learn = (h.learning || []).map((l) => l.fitted
    ? `${l.detector} learnt: threshold ${sci(l.fitted.threshold)} (${l.fitted.method})`
    : `${l.detector} learning ${Math.round(100 * l.progress)} %`).join(" · ");
  $("counts").textContent = "outbox " + h.outbox + (learn ? " · " + learn : "");
  $("models").innerHTML = "<table><tr><th>detector</th><th>model</th><th>state</th><th class=num>threshold</th><th>signature</th></tr>" +
    models.models.map((x) => `<tr><td>${esc(x.detector)}</td><td>${esc(x.name)} ${esc(x.version)}</td><td>${esc(x.state)}</td><td class=num>${sci(x.threshold)}</td><td>${esc(x.signature)}</td></tr>`).join("") + "</table>";
}

// Fleet delivery (docs/fleet.md): state, shadow progress, last refusal and recent history of
// delivered models; /models/fleet answers 404 when [fleet] is off, and the panel stays empty.
async function drawFleet() {
  let f;
  try { f = await api("/models/fleet"); } catch (e) { $("fleet").innerHTML = ""; return; }
  const rows = Object.entries(f.detectors || {}).map(([d, s]) => {
    const prog = s.progress != null ? " " + Math.round(s.progress * 100) + "%" : "";
    const r = s.last_refusal;
    const refusal = r ? `${esc(r.version)} <b>${esc(r.check || "")}</b>: ${esc(r.reason || "")}` : "–";
    const hist = (s.history || []).slice(-5).reverse().map((e) =>
      `<div>${esc(ago(e.ts_ms))}: ${esc(e.state)} ${esc(e.version)}${e.check ? " (" + esc(e.check) + ")" : ""}</div>`).join("");
    return `<tr><td>${esc(d)}</td><td>${esc(s.active || "configured")}</td><td>${esc(s.state)}${prog} ${esc(s.version || "")}</td><td>${refusal}</td><td>${hist}</td></tr>`;
  });
  $("fleet").innerHTML = rows.length
    ? "<h2>Delivered models</h2><table><tr><th>detector</th><th>active</th><th>state</th><th>last refusal</th><th>history</th></tr>" + rows.join("") + "</table>"
    : '<div class="empty">fleet delivery on; no model delivered yet</div>';
}

async function fillSources() {
  const d = await api("/history/interfaces");
  const sel = $("source"), cur = sel.value;
  // interfaces: [target, if_name, last_error]
  const opts = ['<option value="flows">NetFlow: all flows</option>'].concat(d.interfaces.map((i) =>
    `<option value="${esc(JSON.stringify([i[0], i[1]]))}">${esc(i[0])} ${esc(i[1])}</option>`));
  if (sel.options.length !== opts.length) {
    sel.innerHTML = opts.join("");
    const scored = d.interfaces.find((i) => i[2] != null);
    sel.value = cur !== "flows" && [...sel.options].some((o) => o.value === cur) ? cur : scored && !sel.dataset.touched ? JSON.stringify([scored[0], scored[1]]) : cur;
  }
}
if (new URLSearchParams(location.search).get("source") === "flows") $("source").dataset.touched = "1";
$("source").onchange = () => { $("source").dataset.touched = "1"; refresh(); };

let busy = false;
async function refresh() {
  if (busy) return; busy = true;
  try {
    await fillSources();
    const v = $("source").value;
    await Promise.all([drawHeader(), drawFleet(), drawAlerts(), v === "flows" ? drawFlows() : drawInterface(...JSON.parse(v))]);
    document.body.dataset.loaded = String(Date.now());
  } catch (e) {
    console.error(e);
  } finally { busy = false; }
}
refresh();
setInterval(refresh, REFRESH_MS);
