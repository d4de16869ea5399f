// The mgrecs dashboard: plain JS and SVG drawn here (no CDN, no library), calling the API's
// own JSON endpoints. The API key (if any) stays in this tab's sessionStorage.
"use strict";

const KEY_STORE = "mgrecs-api-key";
const SVG_NS = "http://www.w3.org/2000/svg";
const BAR_WIDTH = 220;
const METRICS = [
  ["precision@10", "#2f6fde"], ["recall@10", "#19a463"], ["ndcg@10", "#d9822b"], ["coverage", "#8e44ad"],
];

const ONLINE_COLOUR = "#c0392b";

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

// A legend's colour square, styled through the CSSOM (a style attribute would need
// 'unsafe-inline' in the Content-Security-Policy).
function swatch(colour) {
  const node = el("i");
  node.style.background = colour;
  return node;
}

async function api(path, payload = undefined, extraHeaders = {}) {
  const key = sessionStorage.getItem(KEY_STORE);
  const headers = { ...(key ? { "X-API-Key": key } : {}), ...extraHeaders };
  const init = payload === undefined ? { headers }
    : { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(payload) };
  const response = await fetch(path, init);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${response.status}: ${body.detail || response.statusText}`);
  return body;
}

async function guarded(errorId, work) {
  $(errorId).textContent = "";
  try { await work(); } catch (error) { $(errorId).textContent = error.message; }
}

const fmt = (value, digits = 3) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
const when = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "–");
const duration = (seconds) => (seconds === null || seconds === undefined ? "–"
  : seconds < 120 ? `${seconds.toFixed(1)} s` : seconds < 7200 ? `${(seconds / 60).toFixed(1)} min` : `${(seconds / 3600).toFixed(1)} h`);

// A horizontal bar for a match rate (0-100 %) with its Wilson interval drawn across it.
function matchBar(item) {
  const x = (pct) => (pct / 100) * BAR_WIDTH;
  const svg = el("svg:svg", {
    width: BAR_WIDTH, height: 16, class: "match-bar", role: "img",
    "aria-label": `match rate ${item.match_rate} %, 95 % interval ${item.match_rate_low}-${item.match_rate_high} %`,
    "data-match-rate": item.match_rate, "data-low": item.match_rate_low, "data-high": item.match_rate_high,
  });
  svg.append(
    el("svg:rect", { x: 0, y: 2, width: BAR_WIDTH, height: 12, fill: "#eef0f4" }),
    el("svg:rect", { class: "rate", x: 0, y: 2, width: x(item.match_rate).toFixed(2), height: 12, fill: "#2f6fde" }),
    el("svg:line", { class: "interval", x1: x(item.match_rate_low).toFixed(2), x2: x(item.match_rate_high).toFixed(2), y1: 8, y2: 8, stroke: "#1d2330", "stroke-width": 2 }),
    el("svg:line", { x1: x(item.match_rate_low).toFixed(2), x2: x(item.match_rate_low).toFixed(2), y1: 4, y2: 12, stroke: "#1d2330", "stroke-width": 2 }),
    el("svg:line", { x1: x(item.match_rate_high).toFixed(2), x2: x(item.match_rate_high).toFixed(2), y1: 4, y2: 12, stroke: "#1d2330", "stroke-width": 2 }),
  );
  return el("div", { class: "bar" }, svg,
    el("span", {}, `${fmt(item.match_rate, 1)} % (${fmt(item.match_rate_low, 1)}–${fmt(item.match_rate_high, 1)})`));
}

async function loadRegions() {
  const body = await api("/v1/regions");
  const select = $("region-select");
  select.replaceChildren(...body.regions.map((r) =>
    el("option", { value: r.region }, `${r.region} (${r.active_customers} active / ${r.customers})`)));
}

async function showRegion() {
  const region = $("region-select").value;
  if (!region) return;
  const params = new URLSearchParams({ mode: $("region-mode").value });
  if ($("region-category").value.trim()) params.set("category", $("region-category").value.trim());
  if ($("region-sample-size").value) params.set("sample_size", $("region-sample-size").value);
  const body = await api(`/v1/regions/${encodeURIComponent(region)}/recommendations?${params}`);
  const basis = body.mode === "sample"
    ? `sample of ${body.sample_size} of ${body.population} active customers, window ${when(body.window_start)} → ${when(body.window_end)}`
    : `all ${body.population} active customers, cache generation ${body.generation} (counted ${when(body.computed_at)})`;
  $("region-meta").textContent = `${body.region} · ${body.mode} mode (${body.source}) · ${basis}`;
  $("region-table").tBodies[0].replaceChildren(...body.items.map((item, i) => el("tr", {},
    el("td", {}, i + 1),
    el("td", {}, el("strong", {}, item.product_name || item.product_id), el("br"), el("small", {}, item.product_id)),
    el("td", {}, item.category || "–"),
    el("td", {}, matchBar(item)),
    el("td", {}, el("span", { class: `badge ${item.affinity}` }, item.affinity)),
    el("td", {}, fmt(item.mean_score, 4)),
    el("td", {}, item.users))));
  if (!body.items.length) $("region-meta").textContent += " · no recommendations";
}

// Product names, looked up once per product (GET /v1/products/names, 100 ids a request):
// the answers carry product ids (their reasons are named already), people read names.
const NAMES = new Map();

async function nameProducts(ids) {
  const missing = [...new Set(ids)].filter((id) => !NAMES.has(id));
  for (let i = 0; i < missing.length; i += 100) {
    const chunk = missing.slice(i, i + 100);
    const params = new URLSearchParams(chunk.map((id) => ["id", id]));
    try {
      const body = await api(`/v1/products/names?${params}`);
      for (const id of chunk) NAMES.set(id, body.names[id] || null);
    } catch { return; } // no names (yet): the ids still say which product
  }
}

// A product as a person reads it: its name, the id below in small print (and on hover).
function productCell(id, ...extra) {
  const name = NAMES.get(id);
  return el("td", { class: "product", title: id, "data-product": id },
    ...(name ? [el("strong", {}, name), el("br"), el("small", {}, id)] : [id]), ...extra);
}

// A reason as the API words it ("bought Family Cushion 95, Oak Lamp"): the products it
// names are in `reason_product_ids`; each named one shows its id on hover.
const reasonIds = (items) => items.flatMap((item) => item.reason_product_ids || []);

function reasonText(item) {
  if (!item || !item.reason) return "–";
  const parts = [];
  let rest = item.reason;
  for (const id of item.reason_product_ids || []) {
    const name = NAMES.get(id);
    const at = rest.indexOf(name || id);
    if (at < 0) continue;
    parts.push(rest.slice(0, at), name ? el("span", { class: "named", title: id, "data-product": id }, name) : id);
    rest = rest.slice(at + (name || id).length);
  }
  return el("span", { class: "reason" }, ...parts, rest);
}

async function showUser() {
  const id = $("user-id").value.trim();
  const body = await api(`/v1/users/${encodeURIComponent(id)}/recommendations`);
  const extra = [body.model_version && `model ${body.model_version}`, body.experiment && `experiment ${body.experiment.experiment_id}/${body.experiment.arm}`].filter(Boolean);
  await nameProducts([...body.items.map((item) => item.product_id), ...reasonIds(body.items)]);
  $("user-meta").textContent = [`source: ${body.source}`, `updated ${when(body.updated_at)}`, ...extra].join(" · ");
  $("user-table").tBodies[0].replaceChildren(...body.items.map((item) =>
    el("tr", {}, productCell(item.product_id), el("td", {}, fmt(item.score)), el("td", {}, reasonText(item)))));
}

async function showProduct() {
  const id = $("product-id").value.trim();
  const body = await api(`/v1/products/${encodeURIComponent(id)}/similar`);
  await nameProducts([id, ...body.items.map((item) => item.product_id), ...reasonIds(body.items)]);
  const asked = NAMES.get(id);
  const model = body.model_version ? ` · model ${body.model_version}` : "";
  $("product-meta").textContent = `${asked ? `${asked} (${id})` : id} · source: ${body.source} · updated ${when(body.updated_at)}${model}`;
  $("product-table").tBodies[0].replaceChildren(...body.items.map((item) =>
    el("tr", {}, productCell(item.product_id), el("td", {}, fmt(item.score)), el("td", {}, reasonText(item)))));
}

// The catalogue: products by name or id, sold or not (a product the company announced is
// there before anyone buys it). Names first, the id below in small print.
async function showCatalogue() {
  const params = new URLSearchParams({ limit: "50" });
  const q = $("catalogue-q").value.trim();
  const category = $("catalogue-category").value.trim();
  if (q) params.set("q", q);
  if (category) params.set("category", category);
  const body = await api(`/v1/products?${params}`);
  $("catalogue-meta").textContent = `${body.items.length} product${body.items.length === 1 ? "" : "s"}${q ? ` matching “${q}”` : ""}`;
  $("catalogue-table").tBodies[0].replaceChildren(...body.items.map((item) =>
    el("tr", {},
      el("td", { title: item.product_id }, item.name || item.product_id, el("br"), el("small", {}, item.product_id)),
      el("td", {}, item.category || "–"),
      el("td", {}, item.price === null ? "–" : Number(item.price).toFixed(2)),
      el("td", {}, item.in_stock ? "in stock" : "out of stock"),
      el("td", {}, item.active ? "active" : "inactive"),
      el("td", {}, when(item.launched_at)),
      el("td", {}, item.sold ? "yes" : "never"),
      el("td", {}, Object.entries(item.attributes).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}: ${v}`).join(", ") || "–"))));
}

// Model versions over time: one line per offline metric, oldest version on the left.
function modelsChart(models) {
  const versions = [...models].sort((a, b) => a.trained_at.localeCompare(b.trained_at));
  const width = 640, height = 220, left = 40, bottom = 40, top = 10;
  const values = versions.flatMap((m) => METRICS.map(([k]) => m.figures[k]).filter((v) => typeof v === "number"));
  const ymax = Math.max(0.05, ...values) * 1.1;
  const x = (i) => left + 20 + (versions.length === 1 ? (width - left - 80) / 2 : (i * (width - left - 80)) / (versions.length - 1));
  const y = (v) => top + (1 - v / ymax) * (height - top - bottom);
  const svg = el("svg:svg", { width, height, id: "models-svg", role: "img", "aria-label": "offline metrics per model version" });
  for (let t = 0; t <= 4; t++) {
    const v = (ymax * t) / 4;
    svg.append(el("svg:line", { x1: left, x2: width, y1: y(v), y2: y(v), stroke: "#e3e5ea" }),
      el("svg:text", { x: 2, y: y(v) + 4, "font-size": 10, fill: "#556" }, v.toFixed(3)));
  }
  versions.forEach((m, i) => svg.append(el("svg:text", { x: x(i), y: height - bottom + 16, "font-size": 10, "text-anchor": i === versions.length - 1 && i > 0 ? "end" : "middle", fill: m.active ? "#11602a" : "#556", "font-weight": m.active ? 700 : 400 }, m.version)));
  for (const [key, colour] of METRICS) {
    // A version without this metric (not evaluated) has no point rather than a false zero.
    const measured = versions.map((m, i) => [m, i]).filter(([m]) => typeof m.figures[key] === "number");
    const points = measured.map(([m, i]) => [x(i), y(m.figures[key])]);
    svg.append(el("svg:polyline", { points: points.map((p) => p.join(",")).join(" "), fill: "none", stroke: colour, "stroke-width": 2 }));
    measured.forEach(([m], j) => svg.append(el("svg:circle", { class: "point", cx: points[j][0], cy: points[j][1], r: 3.5, fill: colour, "data-version": m.version, "data-metric": key, "data-value": m.figures[key] },
      el("svg:title", {}, `${m.version} ${key}: ${fmt(m.figures[key])}`))));
  }
  // Online NDCG@10 (the lists a version served against what customers bought next), dashed
  // beside the offline one: the same scale, so the two can be compared per version.
  const online = versions.map((m, i) => [m, i]).filter(([m]) => m.online && typeof m.online["ndcg@10"] === "number");
  const onlinePoints = online.map(([m, i]) => [x(i), y(m.online["ndcg@10"])]);
  svg.append(el("svg:polyline", { points: onlinePoints.map((p) => p.join(",")).join(" "), fill: "none", stroke: ONLINE_COLOUR, "stroke-width": 2, "stroke-dasharray": "5 3" }));
  online.forEach(([m], j) => svg.append(el("svg:circle", { class: "online-point", cx: onlinePoints[j][0], cy: onlinePoints[j][1], r: 3.5, fill: ONLINE_COLOUR, "data-version": m.version, "data-value": m.online["ndcg@10"] },
    el("svg:title", {}, `${m.version} online ndcg@10: ${fmt(m.online["ndcg@10"])} (${m.online.customers} customers)`))));
  const legend = el("div", { class: "legend" }, ...METRICS.map(([k, c]) => el("span", {}, swatch(c), k)), el("span", {}, swatch(ONLINE_COLOUR), "ndcg@10 online"));
  return el("div", {}, svg, legend);
}

function showModels(models) {
  $("models-chart").replaceChildren(models.length ? modelsChart(models) : el("p", { class: "meta" }, "no model version yet"));
  $("models-table").tBodies[0].replaceChildren(...models.map((m) => el("tr", {},
    el("td", {}, m.version), el("td", {}, m.recipe), el("td", {}, when(m.trained_at)),
    el("td", {}, el("span", { class: `badge ${m.active ? "on" : "off"}` }, m.active ? "active" : "no")),
    el("td", {}, m.decision || "–"),
    ...METRICS.map(([k]) => el("td", {}, fmt(m.figures[k]))),
    el("td", {}, fmt(m.online ? m.online["ndcg@10"] : null)),
    el("td", {}, m.online ? String(m.online.customers) : "–"))));
}

// What recommendations earned: attributed revenue per day, one line per model version
// (GET /v1/reports/impact?group_by=model_version,day), and the period's totals per version.
const PALETTE = ["#2f6fde", "#19a463", "#d9822b", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d"];
const NOT_SERVED = "(not served)";

function impactChart(report, days) {
  const series = new Map();
  for (const g of report.groups) {
    const version = g.key.model_version;
    if (version === NOT_SERVED || !g.attributed.revenue) continue;
    if (!series.has(version)) series.set(version, new Map());
    series.get(version).set(g.key.day, g.attributed.revenue);
  }
  const width = 640, height = 220, left = 56, bottom = 30, top = 10;
  const ymax = Math.max(1, ...[...series.values()].flatMap((m) => [...m.values()])) * 1.1;
  const x = (i) => left + 10 + (days.length === 1 ? 0 : (i * (width - left - 30)) / (days.length - 1));
  const y = (v) => top + (1 - v / ymax) * (height - top - bottom);
  const svg = el("svg:svg", { width, height, id: "impact-svg", role: "img", "aria-label": "attributed revenue per day and model version" });
  for (let t = 0; t <= 4; t++) {
    const v = (ymax * t) / 4;
    svg.append(el("svg:line", { x1: left, x2: width, y1: y(v), y2: y(v), stroke: "#e3e5ea" }),
      el("svg:text", { x: 2, y: y(v) + 4, "font-size": 10, fill: "#556" }, fmt(v, 0)));
  }
  [0, days.length - 1].forEach((i) => svg.append(el("svg:text", { x: x(i), y: height - 10, "font-size": 10, "text-anchor": i ? "end" : "start", fill: "#556" }, days[i])));
  const legend = [];
  [...series.keys()].sort().forEach((version, n) => {
    const colour = PALETTE[n % PALETTE.length];
    const values = days.map((day) => series.get(version).get(day) || 0);
    svg.append(el("svg:polyline", { points: values.map((v, i) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: colour, "stroke-width": 2 }));
    values.forEach((v, i) => { if (v) svg.append(el("svg:circle", { class: "point", cx: x(i), cy: y(v), r: 3, fill: colour, "data-version": version, "data-day": days[i], "data-value": v }, el("svg:title", {}, `${version} ${days[i]}: ${fmt(v, 2)}`))); });
    legend.push(el("span", {}, swatch(colour), version));
  });
  return el("div", {}, svg, el("div", { class: "legend" }, ...legend));
}

async function showImpact() {
  const periodDays = Number($("impact-days").value);
  const end = new Date();
  const start = new Date(end.getTime() - periodDays * 86400000);
  const params = new URLSearchParams({ start: start.toISOString(), end: end.toISOString(), group_by: "model_version,day" });
  const report = await api(`/v1/reports/impact?${params}`);
  const days = [];
  for (let t = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate()); t < end.getTime(); t += 86400000) days.push(new Date(t).toISOString().slice(0, 10));
  const totals = new Map();
  for (const g of report.groups) {
    const version = g.key.model_version;
    if (version === NOT_SERVED) continue;
    const sum = totals.get(version) || { revenue: 0, orders: 0, items: 0 };
    for (const k of Object.keys(sum)) sum[k] += g.attributed[k];
    totals.set(version, sum);
  }
  const total = report.total;
  const uplift = report.uplift ? `; shown products bought ${fmt(report.uplift.shown_rate * 100, 2)} % vs others ${fmt(report.uplift.other_rate * 100, 2)} %, uplift ${estimate(report.uplift.difference)}` : "";
  $("impact-meta").textContent = `attributed ${fmt(total.attributed.revenue, 2)} of ${fmt(total.attributed.revenue + total.baseline.revenue, 2)} revenue (window ${report.window_days} days)${uplift}`;
  $("impact-chart").replaceChildren(totals.size ? impactChart(report, days) : el("p", { class: "meta" }, "no attributed order in this period"));
  $("impact-table").tBodies[0].replaceChildren(...[...totals.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([version, t]) => el("tr", {},
    el("td", {}, version), el("td", {}, fmt(t.revenue, 2)), el("td", {}, String(t.orders)), el("td", {}, String(t.items)))));
}

async function showExperiments() {
  const experiments = await api("/v1/experiments");
  if (!experiments.length) { $("experiments").replaceChildren(el("p", { class: "meta" }, "no experiment configured")); return; }
  const reports = await Promise.all(experiments.map((e) => api(`/v1/experiments/${encodeURIComponent(e.id)}`)));
  $("experiments").replaceChildren(...reports.map((report) => el("div", {},
    el("h4", {}, report.experiment_id),
    el("table", { class: "experiment" },
      el("thead", {}, el("tr", {}, ...["Arm", "Model", "Share", "Customers", "Impressions", "CTR", "Conversion", "NDCG@10 (offline)", "Revenue / customer", "Served from"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...report.arms.map((a) => el("tr", {},
        el("td", {}, a.arm), el("td", {}, a.model_version ?? `holdout: ${a.serves}`), el("td", {}, `${(a.share * 100).toFixed(0)} %`),
        el("td", {}, a.customers), el("td", {}, a.impressions),
        el("td", {}, estimate(a.ctr)), el("td", {}, estimate(a.conversion)),
        el("td", {}, fmt(a.offline_figures["ndcg@10"])),
        el("td", {}, estimate(a.revenue_per_customer)),
        el("td", {}, Object.entries(a.served_from).map(([s, n]) => `${s}: ${n}`).join(" · ") || "–"))))),
    comparisonsTable(report),
    ...[report.warning, report.serving_warning].filter(Boolean).map((w) => el("p", { class: "warning" }, w)))));
}

function comparisonsTable(report) {
  return el("table", { class: "comparison" },
    el("thead", {}, el("tr", {}, ...[`vs ${report.baseline}`, "CTR Δ", "Conversion Δ", "Revenue / customer Δ"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...report.comparisons.map((c) => el("tr", {}, el("td", {}, c.arm),
      ...["ctr", "conversion", "revenue_per_customer"].map((m) => el("td", {}, difference(c[m], report.warning)))))));
}

function difference(d, warning) {
  if (!d) return "–";
  const verdict = !d.significant ? "no clear difference" : warning ? "significant, sample still small" : d.value > 0 ? "better" : "worse";
  return `${fmt(d.value)} (${fmt(d.low)}–${fmt(d.high)}) p=${d.p_value.toFixed(3)} · ${verdict}`;
}

const estimate = (e) => (e ? `${fmt(e.value)} (${fmt(e.low)}–${fmt(e.high)})` : "–");

function card(label, value, id) {
  return el("div", { class: "card", id }, el("div", { class: "label" }, label), el("div", { class: "value" }, value));
}

function showHealth(status) {
  const cache = status.cache;
  const lag = status.consumer_lag;
  const cards = [
    card("Cache age", `${duration(cache.age_seconds)} ${cache.fresh ? "(fresh)" : "(STALE)"}`, "card-cache-age"),
    card("Cache generation", `${cache.generation ?? "–"} · ${cache.users ?? 0} customers · ${cache.products ?? 0} products`),
    card("Cache hit rate", cache.hit_rate === null ? "–" : `${(cache.hit_rate * 100).toFixed(1)} %`),
    card("Consumer lag", lag.error ? `unknown: ${lag.error}` : lag.groups.map((g) => `${g.group}: ${g.lag}`).join(" · ") || "no group", "card-lag"),
    card("Drift", status.drift ? (status.drift.drifted ? `DRIFT: ${status.drift.flags.join(", ")}` : `none (${when(status.drift.checked_at)})`) : "no report", "card-drift"),
    card("Data quality", status.quality ? `${status.quality.passed ? "passed" : "FAILED"} · ${status.quality.source}/${status.quality.kind}` : "no report", "card-quality"),
  ];
  if (!lag.error) {
    cards.push(card("Dead letters", Object.entries(lag.dead_letters).map(([t, n]) => `${t}: ${n}`).join(" · "), "card-dlq"));
  }
  $("health-cards").replaceChildren(...cards);
  $("cache-tables").tBodies[0].replaceChildren(...cache.tables.map((table) =>
    el("tr", {}, el("td", {}, table.table), el("td", {}, table.rows ?? "–"),
      el("td", {}, table.age_seconds === null ? "–" : duration(table.age_seconds)))));
  $("jobs-table").tBodies[0].replaceChildren(...status.jobs.map((job) => {
    const total = job.finished_at ? (new Date(job.finished_at) - new Date(job.started_at)) / 1000 : null;
    return el("tr", {}, el("td", {}, job.tick_id), el("td", {}, job.kind), el("td", {}, when(job.started_at)),
      el("td", {}, job.finished_at ? duration(total) : "running"),
      el("td", {}, job.steps.map((s) => `${s.step} ${duration(s.seconds)} ${s.status}`).join(" · ")));
  }));
  $("quality-report").replaceChildren(...(status.quality ? qualitySummary(status.quality.report) : [el("p", { class: "meta" }, "no report yet")]));
}

// The data-quality report in words: the verdict, each check with its count, share and a few
// of the lines it flagged, the coverage with its example ids; the stored JSON folded below.
const percent = (rate) => `${(rate * 100).toFixed(rate && rate < 0.001 ? 3 : 1)} %`;
const example = (line) => Object.entries(line).map(([k, v]) => `${k}: ${v === null ? "–" : typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
const examples = (items) => (!items.length ? "–" : items.every((i) => typeof i !== "object") ? items.join(", ")
  : el("ul", { class: "examples" }, ...items.map((i) => el("li", {}, example(i)))));

function qualitySummary(report) {
  const checks = Object.entries(report.checks).sort(([, a], [, b]) => b.count - a.count);
  const cov = report.coverage;
  return [
    el("p", { id: "quality-verdict", class: report.passed ? "verdict passed" : "verdict failed" },
      el("strong", {}, report.passed ? "Passed" : "FAILED"),
      ` · ${report.source} ${report.kind} of ${when(report.created_at)} · ${report.lines} lines, ${report.bad_lines} bad (${percent(report.bad_rate)}, at most ${percent(report.max_bad_rate)} allowed) · ${report.reason}`),
    el("table", { id: "quality-checks" },
      el("thead", {}, el("tr", {}, ...["Check", "Lines flagged", "Share", "Examples"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...(checks.length ? checks.map(([name, check]) => el("tr", { class: check.count ? "flagged" : "" },
        el("td", {}, name.replaceAll("_", " ")), el("td", {}, check.count), el("td", {}, percent(check.rate)), el("td", {}, examples(check.examples))))
        : [el("tr", {}, el("td", { colspan: 4 }, "no check ran"))]))),
    el("table", { id: "quality-coverage" },
      el("thead", {}, el("tr", {}, el("th", {}, "Coverage"), el("th", {}, "Count"), el("th", {}, "Examples"))),
      el("tbody", {},
        el("tr", {}, el("td", {}, "customers"), el("td", {}, cov.customers), el("td", {}, "")),
        el("tr", {}, el("td", {}, "products bought"), el("td", {}, cov.products_bought), el("td", {}, "")),
        el("tr", {}, el("td", {}, "products without purchases"), el("td", {}, cov.products_without_purchases),
          el("td", { class: "products" }, ...(cov.products_without_purchases_examples.length ? cov.products_without_purchases_examples.flatMap((id, i) => [i ? ", " : "", NAMES.get(id) ? el("span", { class: "named", title: id, "data-product": id }, NAMES.get(id)) : id]) : ["–"]))),
        el("tr", {}, el("td", {}, "customers with one order"), el("td", {}, cov.customers_with_one_order), el("td", {}, examples(cov.customers_with_one_order_examples))))),
    el("details", {}, el("summary", {}, "stored report (JSON)"), el("pre", {}, JSON.stringify(report, null, 2))),
  ];
}

// The active model's margin curve (metrics.margin_curve, measured at its retrain): mean
// margin of the top 10 across, NDCG@10 up, one point per weight.
function marginChart(curve) {
  const points = curve.points;
  const width = 640, height = 240, left = 50, bottom = 40, top = 14, right = 20;
  const margins = points.map((p) => p.mean_margin), ndcgs = points.map((p) => p.ndcg);
  const [xmin, xmax] = [Math.min(...margins), Math.max(...margins)];
  const ymax = Math.max(0.01, ...ndcgs) * 1.1;
  const x = (v) => left + (xmax > xmin ? ((v - xmin) / (xmax - xmin)) * (width - left - right) : (width - left - right) / 2);
  const y = (v) => top + (1 - v / ymax) * (height - top - bottom);
  const svg = el("svg:svg", { width, height, id: "margin-svg", role: "img", "aria-label": "NDCG@10 against mean margin per weight" });
  for (let t = 0; t <= 4; t++) {
    const v = (ymax * t) / 4;
    svg.append(el("svg:line", { x1: left, x2: width - right, y1: y(v), y2: y(v), stroke: "#e3e5ea" }),
      el("svg:text", { x: 2, y: y(v) + 4, "font-size": 10, fill: "#556" }, v.toFixed(3)));
  }
  svg.append(el("svg:text", { x: left, y: height - 8, "font-size": 10, fill: "#556" }, `mean margin of the top 10: ${fmt(xmin, 2)} … ${fmt(xmax, 2)}`));
  svg.append(el("svg:polyline", { points: points.map((p) => `${x(p.mean_margin)},${y(p.ndcg)}`).join(" "), fill: "none", stroke: "#3366cc", "stroke-width": 2 }));
  points.forEach((p) => svg.append(
    el("svg:circle", { class: "point", cx: x(p.mean_margin), cy: y(p.ndcg), r: 3.5, fill: "#3366cc", "data-weight": p.weight, "data-ndcg": p.ndcg, "data-margin": p.mean_margin },
      el("svg:title", {}, `weight ${p.weight}: NDCG@10 ${fmt(p.ndcg, 4)}, mean margin ${fmt(p.mean_margin, 2)}`)),
    el("svg:text", { x: x(p.mean_margin) + 4, y: y(p.ndcg) - 6, "font-size": 9, fill: "#556" }, String(p.weight))));
  return svg;
}

function showMargin(models) {
  const active = models.find((m) => m.active && m.metrics && m.metrics.margin_curve);
  const curve = active && active.metrics.margin_curve;
  $("margin-meta").textContent = curve
    ? `${active.version} (${curve.recipe}): ${curve.users} customers, ${curve.products_with_margin} products with a price and a cost, the best ${curve.candidates} re-ordered`
    : "no curve: the active model was trained without products' costs (or before margins were measured)";
  $("margin-chart").replaceChildren(...(curve ? [marginChart(curve)] : []));
  $("margin-table").tBodies[0].replaceChildren(...(curve ? curve.points : []).map((p) => el("tr", {},
    el("td", {}, String(p.weight)), el("td", {}, fmt(p.ndcg, 4)), el("td", {}, fmt(p.mean_margin, 2)))));
}

async function loadStatus() {
  const status = await api("/v1/status");
  if (status.quality) await nameProducts(status.quality.report.coverage.products_without_purchases_examples);
  showModels(status.models);
  showMargin(status.models);
  showHealth(status);
}

// Business rules: the list (disable), a form to create one, and a preview of one customer's
// and one region's list before and after (the draft in the form, or the rules in force).
const csv = (value) => value.split(",").map((v) => v.trim()).filter(Boolean);

function draftRule() {
  const target = {};
  if (csv($("rule-products").value).length) target.products = csv($("rule-products").value);
  if (csv($("rule-categories").value).length) target.categories = csv($("rule-categories").value);
  if ($("rule-min-price").value) target.min_price = Number($("rule-min-price").value);
  if ($("rule-max-price").value) target.max_price = Number($("rule-max-price").value);
  if ($("rule-out-of-stock").checked) target.out_of_stock = true;
  if ($("rule-inactive").checked) target.inactive = true;
  const attributes = Object.fromEntries(csv($("rule-attributes").value).map((pair) => pair.split("=").map((p) => p.trim())));
  if (Object.keys(attributes).length) target.attributes = attributes;
  const rule = { kind: $("rule-kind").value, target };
  for (const [field, id] of [["factor", "rule-factor"], ["slot", "rule-slot"], ["share", "rule-share"]]) {
    if ($(id).value) rule[field] = Number($(id).value);
  }
  if ($("rule-region").value.trim()) rule.region = $("rule-region").value.trim();
  if ($("rule-name").value.trim()) rule.name = $("rule-name").value.trim();
  if ($("rule-starts").value) rule.starts_at = new Date($("rule-starts").value).toISOString();
  if ($("rule-ends").value) rule.ends_at = new Date($("rule-ends").value).toISOString();
  return rule;
}

const actor = () => ($("rule-by").value.trim() ? { "X-Actor": $("rule-by").value.trim() } : {});

function ruleValue(rule) {
  return { boost: `× ${rule.factor}`, pin: `slot ${rule.slot}`, promotion: `${(rule.share * 100).toFixed(0)} % of slots` }[rule.kind] || "";
}

// A rule's target as a merchandiser reads it: products by name (id on hover), then the
// categories, price range, stock, sale and attributes it also asks for.
function targetText(target) {
  const parts = [];
  for (const id of target.products || []) {
    parts.push(NAMES.get(id) ? el("span", { class: "named", title: id, "data-product": id }, NAMES.get(id)) : id);
  }
  if (target.categories) parts.push(`category ${target.categories.join(" or ")}`);
  if (target.min_price != null || target.max_price != null) parts.push(`price ${target.min_price ?? "0"}–${target.max_price ?? "∞"}`);
  if (target.out_of_stock) parts.push("out of stock");
  if (target.inactive) parts.push("inactive");
  if (target.attributes) parts.push(Object.entries(target.attributes).map(([k, v]) => `${k}: ${v}`).join(", "));
  return parts.flatMap((part, i) => (i ? [", ", part] : [part]));
}

async function showRules() {
  const body = await api("/v1/admin/rules?include_disabled=false");
  await nameProducts(body.rules.flatMap((rule) => rule.target.products || []));
  $("rules-table").tBodies[0].replaceChildren(...body.rules.map((rule) => {
    const disable = el("button", { type: "button", class: "rule-disable", "data-rule": rule.rule_id }, "Disable");
    disable.addEventListener("click", () => guarded("rules-error", async () => {
      await api(`/v1/admin/rules/${rule.rule_id}/disable`, {}, actor());
      await showRules();
    }));
    return el("tr", { "data-rule": rule.rule_id }, el("td", {}, rule.rule_id), el("td", {}, rule.kind), el("td", {}, rule.name || "–"),
      el("td", {}, rule.region || "all"), el("td", { class: "target" }, ...targetText(rule.target)), el("td", {}, ruleValue(rule)),
      el("td", {}, rule.starts_at || rule.ends_at ? `${when(rule.starts_at)} → ${when(rule.ends_at)}` : "always"),
      el("td", {}, `${when(rule.updated_at)} by ${rule.updated_by}`), el("td", {}, disable));
  }));
}

function previewTable(title, list) {
  const ids = (items) => items.map((i) => i.product_id);
  const before = ids(list.before);
  const after = ids(list.after);
  const named = (id) => (id && NAMES.get(id) ? el("span", { title: id, "data-product": id }, NAMES.get(id)) : id || "");
  const rows = Array.from({ length: Math.max(before.length, after.length) }, (_, i) => el("tr", {},
    el("td", {}, i + 1), el("td", {}, named(before[i])),
    el("td", { class: before[i] === after[i] ? "" : "changed" }, named(after[i]), list.after[i] && list.after[i].reason ? el("small", {}, " ", reasonText(list.after[i])) : "")));
  return el("div", { class: "preview-list" }, el("h4", {}, `${title} (${list.source})`),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, "before"), el("th", {}, "after"))), el("tbody", {}, ...rows)));
}

async function showPreview(withDraft) {
  const request = { limit: 10 };
  if ($("preview-customer").value.trim()) request.customer = $("preview-customer").value.trim();
  if ($("preview-region").value.trim()) request.region = $("preview-region").value.trim();
  if (withDraft) request.rule = draftRule();
  const body = await api("/v1/admin/rules/preview", request);
  const lists = [body.customer, body.region].filter(Boolean);
  await nameProducts(lists.flatMap((list) => [...list.before, ...list.after].map((i) => i.product_id))
    .concat(lists.flatMap((list) => reasonIds(list.after))));
  $("preview").replaceChildren(...[["Customer", body.customer], ["Region", body.region]]
    .filter(([, list]) => list).map(([title, list]) => previewTable(title, list)));
}

async function createRule() {
  await api("/v1/admin/rules", draftRule(), actor());
  await showRules();
  await showPreview(false);
}

// Each mode's days and months (GET /v1/reports/cost): AWS mode's estimated bill, and for
// self-hosted mode what AWS would have cost beside its machine hours.
async function showCost() {
  const days = Number($("cost-days").value);
  const end = new Date();
  const start = new Date(end.getTime() - (days - 1) * 86400000);
  const params = new URLSearchParams({ start: start.toISOString().slice(0, 10), end: end.toISOString().slice(0, 10) });
  const report = await api(`/v1/reports/cost?${params}`);
  const budget = report.daily_budget > 0 ? `; daily budget ${fmt(report.daily_budget, 2)} USD` : "";
  $("cost-meta").textContent = `prices as of ${report.prices.taken}${budget}`;
  const n = (value) => fmt(value || 0, 0);
  const cpu = (p) => Object.values(p.cpu_seconds).reduce((a, b) => a + b, 0);
  $("cost-table").tBodies[0].replaceChildren(...report.days.slice().reverse().map((p) => el("tr", p.over_budget ? { class: "over-budget" } : {},
    el("td", {}, p.period), el("td", {}, p.mode), el("td", {}, n(p.counts.put_events_calls)), el("td", {}, n(p.counts.events)),
    el("td", {}, n(p.counts.get_recommendations)), el("td", {}, n(p.counts.get_personalized_ranking)), el("td", {}, n(p.counts.peak_tps)),
    el("td", {}, fmt(p.counts.training_hours || 0, 3)), el("td", {}, n(p.counts.batch_inference_inputs)),
    el("td", {}, fmt(p.aws_usd, 2) + (p.over_budget ? " (over budget)" : "")), el("td", {}, fmt(p.machine_hours, 0)),
    el("td", {}, fmt(p.machine_usd, 2)), el("td", {}, fmt(cpu(p), 0)))));
  $("cost-months").tBodies[0].replaceChildren(...report.months.map((p) => el("tr", {},
    el("td", {}, p.period), el("td", {}, p.mode), el("td", {}, fmt(p.aws_usd, 2)), el("td", {}, fmt(p.machine_usd, 2)),
    el("td", {}, p.lines.filter((l) => l.usd > 0).map((l) => `${l.item} ${fmt(l.usd, 2)}`).join("; ") || "–"))));
}

function loadAll() {
  guarded("rules-error", showRules);
  guarded("region-error", async () => { await loadRegions(); await showRegion(); });
  guarded("models-error", loadStatus).then(() => { $("health-error").textContent = $("models-error").textContent; });
  guarded("experiments-error", showExperiments);
  guarded("impact-error", showImpact);
  guarded("cost-error", showCost);
}

function on(formId, errorId, work) {
  $(formId).addEventListener("submit", (event) => { event.preventDefault(); guarded(errorId, work); });
}

$("api-key").value = sessionStorage.getItem(KEY_STORE) || "";
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (key) sessionStorage.setItem(KEY_STORE, key); else sessionStorage.removeItem(KEY_STORE);
  loadAll();
});
on("region-form", "region-error", showRegion);
$("region-select").addEventListener("change", () => guarded("region-error", showRegion));
$("region-mode").addEventListener("change", () => guarded("region-error", showRegion));
on("user-form", "user-error", showUser);
on("product-form", "product-error", showProduct);
on("rule-form", "rules-error", createRule);
on("preview-form", "rules-error", () => showPreview(false));
$("rule-preview").addEventListener("click", () => guarded("rules-error", () => showPreview(true)));
on("catalogue-form", "catalogue-error", showCatalogue);
$("impact-days").addEventListener("change", () => guarded("impact-error", showImpact));
$("cost-days").addEventListener("change", () => guarded("cost-error", showCost));
loadAll();
