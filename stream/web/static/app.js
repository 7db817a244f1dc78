// Journey Stream web page: the journey map (index.html) and the customer page
// (customer.html). Plain ES2020, no build step. Reads the worker's JSON API on the same
// origin with the bearer token taken from the URL fragment (#token=...) and kept in
// sessionStorage. Every value from the API reaches the page through textContent or an
// attribute, never as HTML.
"use strict";

const STAGES = ["awareness", "acquisition", "onboarding", "engagement", "advocacy"];
const STAGE_COLORS = {
  awareness: "#4f7bd9",
  acquisition: "#2a9d8f",
  onboarding: "#5aa64b",
  engagement: "#e08a2c",
  advocacy: "#8b5cc7",
};
const CHANNELS = {
  web: { label: "Web", color: "#2563eb" },
  app: { label: "App", color: "#7c3aed" },
  store: { label: "Store", color: "#059669" },
  email: { label: "Email", color: "#d97706" },
  sms: { label: "SMS", color: "#db2777" },
  push: { label: "Push", color: "#0891b2" },
  call_center: { label: "Call center", color: "#dc2626" },
  social: { label: "Social", color: "#65a30d" }, // posts from the listening tool; the community team's tasks
  timer: { label: "Timer", color: "#64748b" }, // decisions a due timer triggered
};
const DROP_COLOR = "#b6bcc8";
const TOKEN_KEY = "journey.apiToken";
const DECISIONS_SHOWN = 12;
const RANGES = [1, 7, 30, 90]; // days the performance table offers (the API keeps 90)
const DEFAULT_RANGE = 7;
const REFRESH_S = 30; // the journey map reloads its numbers this often (?refresh=N to change)
const TIMELINE_KINDS = [
  ["event", "Events"],
  ["action", "Actions"],
  ["stage", "Stage changes"],
];

// ---------------------------------------------------------------- small helpers

/** An element with attributes (data-*, class, ...) and children (nodes or text). */
function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "style") element.style.cssText = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const byId = (id) => document.getElementById(id);

function titleCase(code) {
  const text = String(code ?? "")
    .replace(/_/g, " ")
    .trim();
  return text ? text[0].toUpperCase() + text.slice(1) : "";
}

function stageLabel(stage) {
  return titleCase(stage);
}

function channelLabel(channel) {
  return CHANNELS[channel]?.label ?? titleCase(channel);
}

function channelColor(channel) {
  return CHANNELS[channel]?.color ?? "#64748b";
}

const integer = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat("en-GB", {
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});
const oneDecimal = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 1 });
const moneyFormats = new Map();

function percent(share) {
  return share === null || share === undefined ? "–" : `${oneDecimal.format(share * 100)} %`;
}

/** An amount with its currency's ISO code, e.g. "EUR 89.90" (the code is never left out). */
function money(amount, currency) {
  const code = /^[A-Z]{3}$/.test(currency ?? "") ? currency : "EUR";
  if (!moneyFormats.has(code)) {
    let format;
    try {
      format = new Intl.NumberFormat("en-GB", {
        style: "currency",
        currency: code,
        currencyDisplay: "code",
      });
    } catch {
      format = { format: (value) => `${code} ${decimal.format(value)}` };
    }
    moneyFormats.set(code, format);
  }
  return moneyFormats.get(code).format(amount ?? 0);
}

/** Amounts by currency ({"EUR": 12.5}) as one text; a dash when there are none. */
function amounts(byCurrency) {
  const entries = Object.entries(byCurrency ?? {}).filter(([, amount]) => amount);
  return entries.length ? entries.map(([code, amount]) => money(amount, code)).join(" + ") : "–";
}

/** The page's one date format: "2026-11-23 10:00:05 UTC" (UTC, 24 h, year first). */
function formatTime(ms) {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

/** A reason code in plain words with the code beside it: "Contact limit reached (contact_cap)". */
function reasonElement(code, text) {
  if (!code) return h("span", { class: "muted" }, "–");
  return h(
    "span",
    { class: "reason", "data-reason-code": code },
    text && text !== code ? `${text} ` : "",
    h("span", { class: "reason-code" }, "(", h("code", {}, code), ")"),
  );
}

/** A duration in days, in the unit a person reads best (d, h or min). */
function duration(days) {
  if (days === null || days === undefined) return "–";
  if (days >= 1) return `${oneDecimal.format(days)} d`;
  const hours = days * 24;
  if (hours >= 1) return `${oneDecimal.format(hours)} h`;
  return `${integer.format(hours * 60)} min`;
}

function epochMs(rfc3339) {
  const ms = Date.parse(rfc3339 ?? "");
  return Number.isNaN(ms) ? null : ms;
}

/** A <time> element showing an RFC 3339 instant in UTC (or a dash). */
function timeElement(rfc3339) {
  const ms = epochMs(rfc3339);
  if (ms === null) return h("span", { class: "muted" }, "–");
  return h("time", { datetime: rfc3339, title: rfc3339 }, formatTime(ms));
}

function chip(text, attrs = {}) {
  return h("span", { ...attrs, class: `chip ${attrs.class ?? ""}`.trim() }, text);
}

function channelChip(channel) {
  return h(
    "span",
    { class: "chip channel", "data-channel": channel, style: `--channel:${channelColor(channel)}` },
    channelLabel(channel),
  );
}

function stageChip(stage) {
  return h(
    "span",
    {
      class: "chip stage",
      "data-stage": stage,
      style: `--stage:${STAGE_COLORS[stage] ?? "#64748b"}`,
    },
    stageLabel(stage),
  );
}

// ---------------------------------------------------------------- token and API

/** Moves a #token=... fragment into sessionStorage and out of the address bar. */
function adoptFragmentToken() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  if (!params.has("token")) return;
  const token = params.get("token").trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  params.delete("token");
  const rest = params.toString();
  const url = window.location.pathname + window.location.search + (rest ? `#${rest}` : "");
  window.history.replaceState(null, "", url);
}

function currentToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }

  get isAuth() {
    return this.status === 401 || this.status === 403;
  }
}

// The API lives at the root of the origin the page is served from (the page is /ui/...).
const API_ROOT = window.location.pathname.replace(/\/ui(\/.*)?$/, "/");

/** The JSON body of GET <API_ROOT><path>, or an ApiError. */
async function api(path) {
  const token = currentToken();
  if (!token) throw new ApiError(401, "no_token", "No API token yet.");
  let response;
  try {
    response = await fetch(API_ROOT + path, {
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, "unreachable", `The worker did not answer (${error.message}).`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const code = body?.error ?? `http_${response.status}`;
    const detail = body?.detail ?? body?.message ?? response.statusText;
    throw new ApiError(response.status, code, detail);
  }
  if (body === null || typeof body !== "object") {
    throw new ApiError(
      response.status,
      "bad_response",
      "The worker answered with something that is not JSON.",
    );
  }
  return body;
}

// ---------------------------------------------------------------- page frame

function showMessage(kind, title, detail) {
  const box = byId("message");
  box.replaceChildren(h("strong", {}, title), detail ? h("span", {}, ` ${detail}`) : null);
  box.dataset.kind = kind;
  box.hidden = false;
}

function clearMessage() {
  const box = byId("message");
  box.hidden = true;
  box.replaceChildren();
  delete box.dataset.kind;
}

function showAuth(show) {
  byId("auth").hidden = !show;
  if (show) byId("auth-token").focus();
}

/** Shows a readable message for an error from ``api`` (never a blank page). */
function showError(error, what) {
  document.body.dataset.state = "error";
  byId("content").hidden = true;
  if (!(error instanceof ApiError)) {
    showMessage("error", "Something went wrong in this page.", String(error?.message ?? error));
    return;
  }
  if (error.code === "no_id") {
    showMessage("no_id", "Which customer?", error.detail);
  } else if (error.code === "no_token") {
    showMessage("auth", "Authentication required.", "Enter the worker's API token to continue.");
    showAuth(true);
  } else if (error.isAuth) {
    showMessage(
      "auth",
      "Authentication failed.",
      `The API token was not accepted (HTTP ${error.status}). Enter a valid token.`,
    );
    showAuth(true);
  } else if (error.status === 404) {
    showMessage("not_found", `${what} not found.`, error.detail || "");
  } else if (error.status === 400) {
    showMessage("bad_request", "The request was not valid.", error.detail || "");
  } else if (error.status === 0) {
    showMessage("unreachable", "The worker is not reachable.", error.detail);
  } else {
    showMessage("error", `The worker answered HTTP ${error.status}.`, error.detail || error.code);
  }
}

/** Wires the token form, then loads the page; a new token reloads it. */
function startPage(load, what) {
  adoptFragmentToken();
  byId("auth-form").addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const token = byId("auth-token").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    byId("auth-token").value = "";
    run();
  });
  async function run() {
    document.body.dataset.state = "loading";
    clearMessage();
    showAuth(false);
    try {
      await load();
      byId("content").hidden = false;
      document.body.dataset.state = "ready";
    } catch (error) {
      showError(error, what);
    }
  }
  run();
}

// ---------------------------------------------------------------- journey map

function renderFunnel(funnel) {
  const byStage = new Map((funnel.stages ?? []).map((row) => [row.stage, row]));
  const rows = STAGES.map((stage) => ({ customers: 0, ...byStage.get(stage), stage }));
  const total = funnel.total ?? rows.reduce((sum, row) => sum + row.customers, 0);
  const widest = Math.max(1, ...rows.map((row) => row.customers));
  byId("total").textContent = integer.format(total);
  byId("total").dataset.total = total;

  const list = byId("funnel");
  list.replaceChildren(
    ...rows.map((row, index) => {
      const width = Math.max(2, (row.customers / widest) * 100);
      const share = total ? row.customers / total : null;
      const facts = [
        ["Entered", row.entered === undefined ? "–" : integer.format(row.entered)],
        ["Moved on", row.moved_on === undefined ? "–" : integer.format(row.moved_on)],
        ["Not moved on", percent(notMovedOn(row))],
        ["Avg. time in stage", duration(row.avg_days_in_stage)],
      ];
      return h(
        "li",
        {
          class: "funnel-stage",
          "data-stage": row.stage,
          "data-count": row.customers,
          style: `--stage:${STAGE_COLORS[row.stage]}`,
        },
        h(
          "div",
          { class: "funnel-name" },
          h("span", { class: "step" }, index + 1),
          h("span", {}, stageLabel(row.stage)),
        ),
        h(
          "div",
          { class: "funnel-bar-track" },
          h("div", { class: "funnel-bar", style: `width:${width}%` }),
        ),
        h(
          "div",
          { class: "funnel-count" },
          h("span", { class: "count", "data-count": row.customers }, integer.format(row.customers)),
          h("span", { class: "share" }, share === null ? "" : percent(share)),
        ),
        h(
          "dl",
          { class: "funnel-facts" },
          facts.map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value))),
        ),
      );
    }),
  );
  list.setAttribute("aria-busy", "false");

  const stayed = byId("not-moved-on").tBodies[0];
  stayed.replaceChildren(
    ...rows.map((row) =>
      h(
        "tr",
        { "data-stage": row.stage, "data-not-moved-on": notMovedOn(row) ?? "" },
        h("th", { scope: "row" }, stageChip(row.stage)),
        h("td", { class: "num" }, row.entered === undefined ? "–" : integer.format(row.entered)),
        h("td", { class: "num" }, row.moved_on === undefined ? "–" : integer.format(row.moved_on)),
        h("td", { class: "num" }, percent(notMovedOn(row))),
      ),
    ),
  );
  return rows;
}

/** A stage's share not moved on (``drop_off`` is its old name, from an older worker). */
function notMovedOn(row) {
  return row?.not_moved_on !== undefined ? row.not_moved_on : row?.drop_off;
}

function renderTransitionTable(transitions) {
  const body = byId("transitions").tBodies[0];
  if (!transitions.length) {
    body.replaceChildren(
      h("tr", { class: "placeholder" }, h("td", { colspan: 3 }, "No stage transitions yet.")),
    );
    return;
  }
  body.replaceChildren(
    ...transitions.map((move) =>
      h(
        "tr",
        {
          class: "transition",
          "data-from": move.from,
          "data-to": move.to,
          "data-count": move.count,
        },
        h("td", {}, stageChip(move.from)),
        h(
          "td",
          {},
          stageChip(move.to),
          STAGES.indexOf(move.to) < STAGES.indexOf(move.from)
            ? h("span", { class: "muted" }, " (back)")
            : null,
        ),
        h("td", { class: "num" }, integer.format(move.count)),
      ),
    ),
  );
}

/** The Sankey chart; a move back to an earlier stage flows into a node of its own. */
function renderSankey(transitions, stageRows) {
  const box = byId("flow");
  const note = byId("flow-note");
  if (!transitions.length) {
    box.dataset.chart = "empty";
    box.querySelector(".chart-box").hidden = true;
    note.textContent = "No customer has moved between stages yet.";
    note.hidden = false;
    return;
  }
  if (typeof window.Chart !== "function" || !window.Chart.registry?.controllers?.get?.("sankey")) {
    box.dataset.chart = "unavailable";
    box.querySelector(".chart-box").hidden = true;
    note.textContent =
      "The chart library is not installed (run deploy/local/ui_vendor.sh); the tables below show the same numbers.";
    note.hidden = false;
    return;
  }
  const rowOf = new Map(stageRows.map((row) => [row.stage, row]));
  const column = {};
  const labels = {};
  const colorOf = {};
  const priority = {};
  for (const [index, stage] of STAGES.entries()) {
    column[stage] = index;
    colorOf[stage] = STAGE_COLORS[stage];
    labels[stage] = stageLabel(stage);
    priority[stage] = 0;
  }
  // Those who entered a stage and have not moved on flow into a grey node.
  const dropped = [];
  for (const [index, stage] of STAGES.entries()) {
    const row = rowOf.get(stage);
    const share = notMovedOn(row);
    if (share === null || share === undefined) continue;
    const stayed = (row.entered ?? 0) - (row.moved_on ?? 0);
    if (stayed <= 0) continue;
    const key = `${stage}:stayed`;
    column[key] = index + 1;
    labels[key] = `${percent(share)} not moved on`;
    colorOf[key] = DROP_COLOR;
    priority[key] = 1;
    dropped.push({ from: stage, to: key, flow: stayed });
  }
  const data = transitions
    .filter((move) => move.count > 0)
    .map((move) => {
      const backwards = STAGES.indexOf(move.to) <= STAGES.indexOf(move.from);
      const target = backwards ? `${move.to}:back` : move.to;
      if (backwards) {
        column[target] = STAGES.length;
        labels[target] = `Back to ${stageLabel(move.to)}`;
        colorOf[target] = STAGE_COLORS[move.to] ?? "#64748b";
      }
      return { from: move.from, to: target, flow: move.count };
    })
    .concat(dropped);
  for (const move of data) {
    for (const key of [move.from, move.to]) {
      if (!(key in column)) {
        column[key] = STAGES.length;
        labels[key] = titleCase(key);
        colorOf[key] = "#64748b";
      }
    }
  }
  const fontFamily = getComputedStyle(document.body).fontFamily; // the page's, from style.css
  const canvas = byId("flow-chart");
  window.Chart.getChart(canvas)?.destroy();
  new window.Chart(canvas, {
    type: "sankey",
    data: {
      datasets: [
        {
          label: "Stage transitions",
          data,
          column,
          labels,
          priority,
          colorFrom: (context) => colorOf[context.raw?.from] ?? "#64748b",
          colorTo: (context) => colorOf[context.raw?.to] ?? "#64748b",
          colorMode: "gradient",
          alpha: 0.45,
          nodeWidth: 14,
          borderWidth: 0,
          size: "max",
          nodePadding: 30,
          // Node names above their node: the space beside a node is where flows run.
          nodeLabels: {
            position: "top",
            padding: 3,
            font: { family: fontFamily, size: 12, weight: "600" },
            color: (node) => (colorOf[node.key] === DROP_COLOR ? "#6b7280" : "#1f2937"),
          },
          flowLabels: {
            display: true,
            color: "#1f2937",
            backgroundColor: "rgba(255, 255, 255, 0.8)",
            borderRadius: 3,
            padding: 2,
            font: { family: fontFamily, size: 11, weight: "600" },
          },
        },
      ],
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      layout: { padding: { left: 52, right: 76, top: 24, bottom: 4 } },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: (context) =>
              `${labels[context.raw.from] ?? context.raw.from} → ${labels[context.raw.to] ?? context.raw.to}: ${integer.format(context.raw.flow)}`,
          },
        },
      },
    },
  });
  box.dataset.chart = "sankey";
}

// ---------------------------------------------------------------- action performance

/** The range of days chosen (?days=N in the address), one the table offers. */
function chosenDays() {
  const days = Number(new URLSearchParams(window.location.search).get("days"));
  return RANGES.includes(days) ? days : DEFAULT_RANGE;
}

function chooseDays(days) {
  const url = new URL(window.location.href);
  url.searchParams.set("days", String(days));
  window.history.replaceState(null, "", url.pathname + url.search + url.hash);
}

/** Seconds between refreshes: ?refresh=N (at least 1), else REFRESH_S. */
function refreshSeconds() {
  const asked = Number(new URLSearchParams(window.location.search).get("refresh"));
  return Number.isFinite(asked) && asked >= 1 ? asked : REFRESH_S;
}

function conversionText(arm) {
  if (!arm?.exposures) return "–";
  return `${percent(arm.conversion_rate)} (${integer.format(arm.conversions)} of ${integer.format(arm.exposures)})`;
}

function upliftText(uplift) {
  if (uplift === null || uplift === undefined) return "–";
  const points = uplift * 100;
  return `${points > 0 ? "+" : ""}${oneDecimal.format(points)} pts`;
}

const FUNNEL_MEASURES = ["sent", "delivered", "opened", "clicked", "converted"];

function performanceRow(row, scope) {
  const name = row[scope];
  const cell = (measure, text, title) =>
    h("td", { class: "num", "data-measure": measure, title }, text);
  return h(
    "tr",
    {
      class: "performance-row",
      [`data-${scope}`]: name,
      ...Object.fromEntries(FUNNEL_MEASURES.map((measure) => [`data-${measure}`, row[measure]])),
      "data-revenue": JSON.stringify(row.revenue ?? {}),
      "data-treated-rate": row.treatment?.conversion_rate ?? "",
      "data-control-rate": row.control?.conversion_rate ?? "",
      "data-uplift": row.uplift ?? "",
    },
    h("th", { scope: "row" }, titleCase(name), " ", h("code", { class: "muted" }, name)),
    FUNNEL_MEASURES.map((measure) => cell(measure, integer.format(row[measure] ?? 0))),
    cell("revenue", amounts(row.revenue)),
    cell("treated", conversionText(row.treatment)),
    cell("control", conversionText(row.control)),
    cell("uplift", upliftText(row.uplift)),
  );
}

function renderPerformanceTable(id, rows, scope, emptyText) {
  const table = byId(id);
  table.tBodies[0].replaceChildren(
    ...(rows.length
      ? rows.map((row) => performanceRow(row, scope))
      : [h("tr", { class: "placeholder" }, h("td", { colspan: 10 }, emptyText))]),
  );
  table.setAttribute("aria-busy", "false");
}

function renderPerformance(report) {
  const days = report.days ?? chosenDays();
  for (const button of byId("range").querySelectorAll("button[data-days]")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.days) === days));
  }
  const range = byId("performance-range");
  range.textContent =
    report.from === report.to ? `${report.to} (today, UTC)` : `${report.from} to ${report.to} (UTC)`;
  range.dataset.from = report.from ?? "";
  range.dataset.to = report.to ?? "";
  byId("performance-as-of").replaceChildren(timeElement(report.as_of));
  const card = byId("performance-card");
  card.dataset.days = days;
  card.dataset.asOf = report.as_of ?? "";
  renderPerformanceTable(
    "performance",
    report.actions ?? [],
    "action",
    "No action was decided in this range.",
  );
  renderPerformanceTable(
    "journey-performance",
    report.journeys ?? [],
    "journey",
    "No journey step was decided in this range.",
  );
}

async function loadPerformance() {
  renderPerformance(await api(`journey/performance?days=${chosenDays()}`));
}

/** The range buttons (each reloads the table) and the timer that refreshes the map. */
function wirePerformance() {
  for (const button of byId("range").querySelectorAll("button[data-days]")) {
    button.addEventListener("click", () => {
      chooseDays(Number(button.dataset.days));
      byId("performance").setAttribute("aria-busy", "true");
      loadPerformance().catch((error) => showError(error, "Journey data"));
    });
  }
  const seconds = refreshSeconds();
  byId("performance-refresh").textContent = `refreshes every ${integer.format(seconds)} s`;
  let refreshes = 0;
  window.setInterval(async () => {
    if (document.body.dataset.state !== "ready") return; // an error or the token form shows
    try {
      await loadJourneyMap();
      clearMessage();
      document.body.dataset.refreshes = String(++refreshes);
    } catch (error) {
      if (!(error instanceof ApiError) || error.isAuth) {
        showError(error, "Journey data");
        return;
      }
      // Keep the last numbers on the page and try again at the next tick.
      showMessage("stale", "The numbers could not be refreshed; retrying.", error.detail || "");
    }
  }, seconds * 1000);
}

async function loadJourneyMap() {
  const [funnel, moves, report] = await Promise.all([
    api("journey/funnel"),
    api("journey/transitions"),
    api(`journey/performance?days=${chosenDays()}`),
  ]);
  renderPerformance(report);
  const transitions = (moves.transitions ?? [])
    .slice()
    .sort(
      (a, b) =>
        STAGES.indexOf(a.from) - STAGES.indexOf(b.from) ||
        STAGES.indexOf(a.to) - STAGES.indexOf(b.to),
    );
  const rows = renderFunnel(funnel);
  byId("moves").textContent = integer.format(
    transitions.reduce((sum, move) => sum + move.count, 0),
  );
  renderTransitionTable(transitions);
  byId("content").hidden = false; // the chart measures its box: lay it out first
  renderSankey(transitions, rows);
}

// ---------------------------------------------------------------- customer page

function factList(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.map(([term, value, attrs = {}]) =>
      h("div", attrs, h("dt", {}, term), h("dd", {}, value)),
    ),
  );
}

function card(title, body, attrs = {}) {
  return h("section", { class: "card small", ...attrs }, h("h3", {}, title), body);
}

function emptyNote(text) {
  return h("p", { class: "empty" }, text);
}

function renderHeader(customer) {
  document.title = `${customer.customer_id} · Journey Stream`;
  byId("customer-id").textContent = customer.customer_id;
  byId("customer-id").dataset.customerId = customer.customer_id;
  const badges = [stageChip(customer.stage)];
  if (customer.group) {
    badges.push(
      chip(customer.group === "control" ? "Control group" : "Treatment group", {
        class: `group ${customer.group}`,
        "data-group": customer.group,
      }),
    );
  }
  if (customer.app_installed) badges.push(chip("App installed", { class: "soft" }));
  byId("customer-badges").replaceChildren(...badges);
  const kpis = [
    ["Events", customer.event_count ?? (customer.recent_events ?? []).length],
    ["Orders", customer.orders?.count ?? 0],
    ["Revenue", money(customer.orders?.revenue, customer.orders?.currency)],
    ["Open cases", (customer.open_cases ?? []).length],
  ];
  byId("customer-kpis").replaceChildren(
    ...kpis.map(([label, value]) =>
      h(
        "div",
        { class: "kpi" },
        h("span", { class: "kpi-label" }, label),
        h("span", { class: "kpi-value" }, value),
      ),
    ),
  );
  const since = byId("stage-since");
  since.replaceChildren(
    "In ",
    stageLabel(customer.stage),
    " since ",
    timeElement(customer.stage_since),
  );
  const current = STAGES.indexOf(customer.stage);
  byId("stage-track").replaceChildren(
    ...STAGES.map((stage, index) =>
      h(
        "li",
        {
          "data-stage": stage,
          class: index < current ? "done" : index === current ? "current" : "",
          "aria-current": index === current ? "step" : null,
          style: `--stage:${STAGE_COLORS[stage]}`,
        },
        h("span", { class: "dot" }),
        h("span", { class: "label" }, stageLabel(stage)),
      ),
    ),
  );
}

function renderProfile(customer) {
  const identifiers = Object.entries(customer.identifiers ?? {});
  const identity = factList([
    ...identifiers.map(([kind, value]) => [
      titleCase(kind),
      h("code", {}, value),
      { "data-identifier": kind },
    ]),
    ...(customer.linked_identifiers ? [["Linked profiles", customer.linked_identifiers]] : []),
  ]);

  const consentChips = h(
    "div",
    { class: "chips" },
    Object.entries(customer.consent ?? {}).map(([channel, granted]) =>
      chip(`${channelLabel(channel)} ${granted ? "✓" : "✗"}`, {
        class: granted ? "yes" : "no",
        "data-consent": channel,
        "data-granted": granted,
        title: granted ? "consent given" : "no consent",
      }),
    ),
  );
  const optOuts = Object.entries(customer.opt_outs ?? {});
  const consent = h(
    "div",
    {},
    consentChips,
    optOuts.length
      ? factList(
          optOuts.map(([channel, at]) => [
            `Opted out of ${channelLabel(channel)}`,
            typeof at === "string" && epochMs(at) !== null ? timeElement(at) : String(at),
          ]),
        )
      : h("p", { class: "muted small-text" }, "No opt-outs."),
  );

  const cart = customer.cart ?? {};
  const orders = customer.orders ?? {};
  const commerce = factList([
    [
      "Cart",
      `${integer.format(cart.items ?? 0)} item${cart.items === 1 ? "" : "s"} · ${money(cart.value, cart.currency)}`,
      { "data-fact": "cart" },
    ],
    ["Orders", integer.format(orders.count ?? 0), { "data-fact": "orders" }],
    ["Revenue", money(orders.revenue, orders.currency), { "data-fact": "revenue" }],
    ["Returns", integer.format(orders.returns ?? 0)],
    ["Last category", orders.last_category ?? "–"],
    ...(orders.last_order_at ? [["Last order", timeElement(orders.last_order_at)]] : []),
  ]);

  const cases = customer.open_cases ?? [];
  const service = cases.length
    ? h(
        "ul",
        { class: "plain" },
        cases.map((item) =>
          h(
            "li",
            { "data-case": item.case_id },
            h("strong", {}, item.case_id),
            " ",
            chip(item.severity ?? "–", { class: `severity ${item.severity ?? ""}` }),
            h("div", {}, item.reason ?? ""),
            h("div", { class: "muted small-text" }, "opened ", timeElement(item.opened_at)),
          ),
        ),
      )
    : emptyNote("No open service case.");

  const social = socialFacts(customer.social);

  const timers = customer.timers ?? [];
  const held = customer.held_actions ?? [];
  const pending = h(
    "div",
    {},
    timers.length
      ? h(
          "ul",
          { class: "plain" },
          timers.map((timer) =>
            h(
              "li",
              { "data-timer": timer.name },
              h("strong", {}, titleCase(timer.name)),
              h("div", { class: "muted small-text" }, "due ", timeElement(timer.due)),
            ),
          ),
        )
      : emptyNote("No pending timer."),
    held.length
      ? h(
          "div",
          {},
          h("h4", {}, "Held actions"),
          h(
            "ul",
            { class: "plain" },
            held.map((item) =>
              h(
                "li",
                { "data-held": item.action },
                h("strong", {}, item.action),
                " ",
                channelChip(item.channel),
                h(
                  "div",
                  { class: "muted small-text" },
                  "sends after ",
                  timeElement(item.send_after),
                ),
              ),
            ),
          ),
        )
      : null,
  );

  const engagement = customer.engagement ?? {};
  const outbound = customer.channels ?? {};
  const channelNames = [...new Set([...Object.keys(engagement), ...Object.keys(outbound)])].sort(
    (a, b) => Object.keys(CHANNELS).indexOf(a) - Object.keys(CHANNELS).indexOf(b),
  );
  const channels = channelNames.length
    ? h(
        "table",
        { class: "table compact" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", {}, "Channel"),
            h("th", { class: "num" }, "Events"),
            h("th", { class: "num" }, "Sent"),
            h("th", { class: "num" }, "Responses"),
          ),
        ),
        h(
          "tbody",
          {},
          channelNames.map((channel) =>
            h(
              "tr",
              { "data-channel": channel },
              h("td", {}, channelChip(channel)),
              h("td", { class: "num" }, engagement[channel]?.events ?? 0),
              h("td", { class: "num" }, outbound[channel]?.sent ?? 0),
              h("td", { class: "num" }, outbound[channel]?.responses ?? 0),
            ),
          ),
        ),
      )
    : emptyNote("No channel activity.");

  byId("profile").replaceChildren(
    card("Identifiers", identity, { "data-card": "identifiers" }),
    card("Consent", consent, { "data-card": "consent" }),
    card("Cart and orders", commerce, { "data-card": "commerce" }),
    card("Open cases", service, { "data-card": "cases" }),
    card("Social media", social, { "data-card": "social" }),
    card("Pending timers", pending, { "data-card": "timers" }),
    card("Channels", channels, { "data-card": "channels" }),
  );
}

/** The customer's social media posts: per type, per sentiment, reviews' stars, the latest. */
function socialFacts(social) {
  if (!social) return emptyNote("No social post.");
  const counts = (byKey) =>
    Object.entries(byKey ?? {})
      .map(([key, count]) => `${titleCase(key)} ${integer.format(count)}`)
      .join(" · ") || "–";
  const sentiment = h(
    "div",
    { class: "chips" },
    Object.entries(social.sentiment ?? {}).map(([label, count]) =>
      chip(`${titleCase(label)} ${integer.format(count)}`, {
        class: `sentiment ${label}`,
        "data-sentiment": label,
      }),
    ),
  );
  const last = social.last;
  const source = {
    provided: "from the listening tool",
    computed: "computed from the text",
    rating: "from the stars",
    none: "language not read",
  };
  return factList([
    ["Posts", counts(social.posts), { "data-fact": "posts" }],
    ["Sentiment", sentiment, { "data-fact": "sentiment" }],
    ...(social.reviews
      ? [
          [
            "Reviews",
            `${integer.format(social.reviews)} · ${oneDecimal.format(social.average_rating)} ★ on average`,
            { "data-fact": "reviews" },
          ],
        ]
      : []),
    ...(last
      ? [
          [
            "Latest",
            h(
              "span",
              {},
              `${titleCase(last.type)} on ${last.platform}: ${last.sentiment} (${source[last.source] ?? last.source}) `,
              timeElement(last.at),
            ),
            { "data-fact": "latest", "data-sentiment": last.sentiment },
          ],
        ]
      : []),
  ]);
}

/** Events, stage changes and actions as one list, newest first (at one instant: the
 * action, then the stage change, then the event that caused them). */
function timelineItems(customer, decisions) {
  const events = customer.recent_events ?? [];
  const eventById = new Map(events.map((event) => [event.event_id, event]));
  const decisionOfAction = new Map();
  for (const decision of decisions) {
    for (const actionId of decision.chosen ?? []) decisionOfAction.set(actionId, decision);
  }
  const items = [];
  for (const event of events) {
    items.push({ kind: "event", rank: 0, at: event.at, event });
  }
  for (const change of customer.stage_history ?? []) {
    items.push({
      kind: "stage",
      rank: 1,
      at: change.at,
      change,
      trigger: eventById.get(change.event_id),
    });
  }
  for (const action of customer.recent_actions ?? []) {
    const decision = decisionOfAction.get(action.action_id);
    const trigger =
      eventById.get(action.trigger_event_id) ??
      (decision ? decision.trigger : null) ??
      (action.reason_event ? { type: action.reason_event } : null);
    const candidate = decision?.candidates?.find((c) => c.action === action.action);
    items.push({ kind: "action", rank: 2, at: action.decided_at, action, trigger, candidate });
  }
  items.forEach((item, index) => {
    item.ms = epochMs(item.at) ?? Number.MAX_SAFE_INTEGER;
    item.index = index;
  });
  items.sort((a, b) => b.ms - a.ms || b.rank - a.rank || b.index - a.index);
  return items;
}

function triggerText(trigger) {
  if (!trigger) return null;
  const on = trigger.channel ? ` on ${channelLabel(trigger.channel)}` : "";
  return `${titleCase(trigger.type)}${on}`;
}

function timelineEntry(item) {
  const time = h("div", { class: "tl-time" }, timeElement(item.at));
  if (item.kind === "event") {
    const { event } = item;
    return h(
      "li",
      {
        class: "tl-item tl-event",
        "data-kind": "event",
        "data-type": event.type,
        "data-channel": event.channel,
        "data-at": item.at,
        "data-event-id": event.event_id,
        style: `--accent:${channelColor(event.channel)}`,
      },
      time,
      h("div", { class: "tl-marker" }),
      h(
        "div",
        { class: "tl-body" },
        h(
          "div",
          { class: "tl-title" },
          h("span", { class: "tl-name" }, titleCase(event.type)),
          channelChip(event.channel),
        ),
        h("div", { class: "tl-meta" }, h("code", {}, event.event_id)),
      ),
    );
  }
  if (item.kind === "stage") {
    const { change, trigger } = item;
    return h(
      "li",
      {
        class: "tl-item tl-stage",
        "data-kind": "stage",
        "data-type": "stage_change",
        "data-from": change.from,
        "data-to": change.to,
        "data-channel": trigger?.channel ?? null,
        "data-at": item.at,
        style: `--accent:${STAGE_COLORS[change.to] ?? "#64748b"}`,
      },
      time,
      h("div", { class: "tl-marker" }),
      h(
        "div",
        { class: "tl-body" },
        h(
          "div",
          { class: "tl-title" },
          h("span", { class: "tl-name" }, "Stage change"),
          stageChip(change.from),
          h("span", { class: "arrow" }, "→"),
          stageChip(change.to),
        ),
        h(
          "div",
          { class: "tl-meta" },
          trigger ? `after ${triggerText(trigger)}` : h("code", {}, change.event_id ?? ""),
        ),
      ),
    );
  }
  const { action, trigger, candidate } = item;
  const reasonParts = [];
  if (action.reason) reasonParts.push(action.reason);
  if (trigger) reasonParts.push(`triggered by ${triggerText(trigger)}`);
  if (candidate?.detail) reasonParts.push(candidate.detail);
  const reason = reasonParts.join(" · ") || candidate?.reason || "–";
  const outcomes = action.outcomes ?? [];
  const flags = [];
  if (action.group === "control") flags.push(chip("held out: control group", { class: "warn" }));
  if (action.withdrawn) flags.push(chip("withdrawn", { class: "warn" }));
  return h(
    "li",
    {
      class: "tl-item tl-action",
      "data-kind": "action",
      "data-type": action.action,
      "data-channel": action.channel,
      "data-at": item.at,
      "data-action-id": action.action_id,
      style: `--accent:${channelColor(action.channel)}`,
    },
    time,
    h("div", { class: "tl-marker" }),
    h(
      "div",
      { class: "tl-body" },
      h(
        "div",
        { class: "tl-title" },
        h("span", { class: "tl-kind" }, "Action"),
        h("span", { class: "tl-name" }, titleCase(action.action)),
        channelChip(action.channel),
        action.category ? chip(action.category, { class: "soft" }) : null,
        flags,
      ),
      h(
        "div",
        { class: "tl-reason", "data-reason": "" },
        h("span", { class: "label" }, "Why: "),
        reason,
      ),
      candidate
        ? h(
            "div",
            { class: "tl-decision", "data-reason": candidate.reason },
            h("span", { class: "label" }, "Decision: "),
            reasonElement(candidate.reason, candidate.reason_text),
          )
        : null,
      h(
        "div",
        { class: "tl-outcomes", "data-outcomes": outcomes.join(" ") },
        h("span", { class: "label" }, "Outcome: "),
        outcomes.length
          ? outcomes.map((outcome) =>
              chip(titleCase(outcome), { class: "outcome", "data-outcome": outcome }),
            )
          : h("span", { class: "muted" }, "no feedback yet"),
      ),
    ),
  );
}

function renderTimeline(customer, decisions) {
  const items = timelineItems(customer, decisions);
  const list = byId("timeline");
  byId("timeline-filters").hidden = !items.length;
  if (!items.length) {
    list.replaceChildren(h("li", { class: "empty" }, "Nothing happened yet."));
    return;
  }
  list.replaceChildren(
    ...items.map(timelineEntry),
    h("li", { class: "empty", id: "timeline-none", hidden: true }, "Nothing matches the filters."),
  );
  const channels = [
    ...new Set(
      items
        .map((item) => item.event?.channel ?? item.action?.channel ?? item.trigger?.channel)
        .filter(Boolean),
    ),
  ].sort((a, b) => Object.keys(CHANNELS).indexOf(a) - Object.keys(CHANNELS).indexOf(b));
  const checkbox = (name, value, label) =>
    h(
      "label",
      { class: "filter", "data-filter": `${name}:${value}` },
      h("input", { type: "checkbox", name, value, checked: true }),
      label,
    );
  byId("filter-kinds").replaceChildren(
    h("legend", {}, "Show"),
    ...TIMELINE_KINDS.map(([kind, label]) => checkbox("kind", kind, label)),
  );
  byId("filter-channels").replaceChildren(
    h("legend", {}, "Channels"),
    ...channels.map((channel) => checkbox("channel", channel, channelChip(channel))),
  );
  const form = byId("timeline-filters");
  form.onchange = filterTimeline;
  filterTimeline();
}

/** Hides the timeline entries whose kind or channel is unticked (an entry without a
 * channel, such as a stage change of unknown cause, follows its kind alone). */
function filterTimeline() {
  const form = byId("timeline-filters");
  const ticked = (name) =>
    new Set([...form.querySelectorAll(`input[name=${name}]:checked`)].map((box) => box.value));
  const kinds = ticked("kind");
  const channels = ticked("channel");
  const entries = [...byId("timeline").querySelectorAll("li[data-kind]")];
  let shown = 0;
  for (const entry of entries) {
    const { kind, channel } = entry.dataset;
    entry.hidden = !kinds.has(kind) || (channel !== undefined && !channels.has(channel));
    if (!entry.hidden) shown += 1;
  }
  byId("timeline-none").hidden = shown > 0;
  const count = byId("timeline-count");
  count.textContent = `${integer.format(shown)} of ${integer.format(entries.length)} shown`;
  count.dataset.shown = shown;
}

function renderDecisions(decisions, error) {
  const box = byId("decisions");
  if (error) {
    box.replaceChildren(
      h(
        "p",
        { class: "message inline", "data-kind": "error" },
        `Decisions could not be loaded: ${error.detail || error.code}`,
      ),
    );
    return;
  }
  if (!decisions.length) {
    box.replaceChildren(emptyNote("No decision recorded for this customer yet."));
    return;
  }
  box.replaceChildren(
    ...decisions.slice(0, DECISIONS_SHOWN).map((decision) => {
      const candidates = decision.candidates ?? [];
      const sent = candidates.filter((c) => c.outcome === "chosen").map((c) => titleCase(c.action));
      const trigger = decision.trigger ?? {};
      return h(
        "article",
        {
          class: "decision",
          "data-decision-id": decision.decision_id ?? "",
          "data-trigger-type": trigger.type ?? "",
          "data-trigger-channel": trigger.channel ?? "",
        },
        h(
          "header",
          { class: "decision-head" },
          h("span", { class: "tl-name" }, titleCase(trigger.type)),
          trigger.channel ? channelChip(trigger.channel) : null,
          h(
            "span",
            { class: "decision-result" },
            sent.length ? `sent ${sent.join(", ")}` : "nothing sent",
          ),
          h("span", { class: "decision-time" }, timeElement(decision.decided_at)),
        ),
        h(
          "p",
          { class: "muted small-text" },
          decision.stage ? ["stage ", stageLabel(decision.stage)] : null,
          decision.group ? ` · ${decision.group} group` : null,
          decision.policy_version ? ` · policy ${decision.policy_version}` : null,
        ),
        candidates.length
          ? h(
              "table",
              { class: "table compact" },
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  h("th", {}, "Candidate action"),
                  h("th", {}, "Channel"),
                  h("th", {}, "Outcome"),
                  h("th", {}, "Reason"),
                  h("th", {}, "Detail"),
                ),
              ),
              h(
                "tbody",
                {},
                candidates.map((candidate) =>
                  h(
                    "tr",
                    {
                      class: `candidate ${candidate.outcome}`,
                      "data-action": candidate.action,
                      "data-outcome": candidate.outcome,
                      "data-reason": candidate.reason,
                    },
                    h("td", {}, titleCase(candidate.action)),
                    h(
                      "td",
                      {},
                      candidate.channel
                        ? channelChip(candidate.channel)
                        : h("span", { class: "muted" }, "–"),
                    ),
                    h(
                      "td",
                      {},
                      chip(candidate.outcome === "chosen" ? "Sent" : "Suppressed", {
                        class: candidate.outcome === "chosen" ? "yes" : "no",
                      }),
                    ),
                    h("td", {}, reasonElement(candidate.reason, candidate.reason_text)),
                    h("td", { class: "detail" }, candidate.detail ?? ""),
                  ),
                ),
              ),
            )
          : emptyNote("No candidate action for this trigger."),
      );
    }),
  );
}

async function loadCustomer() {
  const customerId = (new URLSearchParams(window.location.search).get("id") ?? "").trim();
  byId("lookup-id").value = customerId;
  if (!customerId) {
    throw new ApiError(400, "no_id", "Enter a customer id in the box above.");
  }
  const path = `customers/${encodeURIComponent(customerId)}`;
  const [customer, explained] = await Promise.all([
    api(path),
    api(`${path}/decisions`).catch((error) => {
      if (error instanceof ApiError && (error.isAuth || error.code === "no_token")) throw error;
      return error;
    }),
  ]);
  if (customer.customer_id && customer.customer_id !== customerId) {
    // The API redirected: this profile was merged into another one (identity resolution).
    showMessage(
      "merged",
      `${customerId} was merged into ${customer.customer_id}.`,
      "Showing the surviving profile.",
    );
    const url = new URL(window.location.href);
    url.searchParams.set("id", customer.customer_id);
    byId("lookup-id").value = customer.customer_id;
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  const decisionsError = explained instanceof Error ? explained : null;
  const decisions = decisionsError ? [] : (explained.decisions ?? []);
  renderHeader(customer);
  renderProfile(customer);
  renderTimeline(customer, decisions);
  renderDecisions(decisions, decisionsError);
}

// ---------------------------------------------------------------- start

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "journey") {
    startPage(loadJourneyMap, "Journey data");
    wirePerformance();
  }
  else if (page === "customer") startPage(loadCustomer, "Customer");
});
