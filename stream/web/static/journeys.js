// Journey Stream web page: the journeys page (journeys.html). Lists the policy's journeys
// (GET /journeys) and draws the chosen one (GET /journeys/{id}) as a flow graph in SVG,
// laid out by dagre (vendor/dagre.min.js): nodes with their kind, name, what they do and
// runs now; edges with their label and count; suppressions and exits by reason. Refreshes
// by itself. Uses app.js's helpers (h, byId, api, ApiError, startPage, showError,
// showMessage, clearMessage, integer, percent, titleCase, formatTime); every value from the
// API reaches the page through textContent or an attribute, never as HTML.
"use strict";

const JOURNEYS_REFRESH_MS = 5000;
const SVG_NS = "http://www.w3.org/2000/svg";
const ENTRY_NODE = "__entry";
const KINDS = {
  send: { label: "Send", color: "#2563eb" },
  decide: { label: "Decide", color: "#7c3aed" },
  wait: { label: "Wait", color: "#64748b" },
  wait_for: { label: "Wait for", color: "#0891b2" },
  branch: { label: "Branch", color: "#d97706" },
  split: { label: "Split", color: "#db2777" },
  exit: { label: "Exit", color: "#15803d" },
};
const UNKNOWN_KIND = { label: "Node", color: "#94a3b8" };
const NODE_MIN_WIDTH = 160;
const NODE_MAX_WIDTH = 290;
const NODE_PADDING = 12;
const LINE_HEIGHT = 16;
// dagre's settings: top to bottom, room between ranks for the edge labels
const GRAPH_LAYOUT = {
  rankdir: "TB",
  nodesep: 36,
  ranksep: 44,
  edgesep: 18,
  marginx: 14,
  marginy: 14,
};

const journeysPage = { timer: null, detail: null }; // the refresh timer, the journey shown

// ---------------------------------------------------------------- small helpers

/** An SVG element with attributes and children (nodes or text). */
function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const measureContext = document.createElement("canvas").getContext("2d");

/** The width in px of ``text`` in a CSS font (an estimate when canvas cannot tell). */
function textWidth(text, font) {
  if (!measureContext) return String(text).length * 7;
  measureContext.font = font;
  return measureContext.measureText(String(text)).width;
}

/** ``text`` cut with an ellipsis to fit ``width`` px. */
function fitText(text, font, width) {
  let shown = String(text);
  if (textWidth(shown, font) <= width) return shown;
  while (shown.length > 1 && textWidth(`${shown}…`, font) > width) shown = shown.slice(0, -1);
  return `${shown}…`;
}

function kindOf(kind) {
  return KINDS[kind] ?? UNKNOWN_KIND;
}

function kindChip(kind) {
  const { color, label } = kindOf(kind);
  return h("span", { class: "chip kind", "data-kind": kind, style: `--kind:${color}` }, label);
}

function sumOf(counts) {
  return Object.values(counts ?? {}).reduce((sum, count) => sum + count, 0);
}

/** "reason 3, other 1" for a count per reason (or a dash). */
function reasonsText(counts) {
  const entries = Object.entries(counts ?? {});
  if (!entries.length) return "–";
  return entries.map(([reason, count]) => `${reason} ${integer.format(count)}`).join(", ");
}

/** "25 % (2 of 8)" for a group's conversion. */
function conversionText(group) {
  if (!group || !group.entered) return "–";
  const { rate, converted, entered } = group;
  return `${percent(rate)} (${integer.format(converted)} of ${integer.format(entered)})`;
}

function selection() {
  const params = new URLSearchParams(window.location.search);
  return { journey: params.get("journey") ?? "", version: params.get("version") ?? "" };
}

function select(journey, version) {
  const params = new URLSearchParams(window.location.search);
  params.set("journey", journey);
  if (version) params.set("version", version);
  else params.delete("version");
  const url = `${window.location.pathname}?${params}${window.location.hash}`;
  window.history.replaceState(null, "", url);
}

// ---------------------------------------------------------------- the list of journeys

function renderJourneyList(journeys, chosen) {
  byId("journey-count").textContent = integer.format(journeys.length);
  const active = journeys.reduce((sum, journey) => sum + journey.active, 0);
  byId("active-runs").textContent = integer.format(active);
  const body = byId("journey-list").tBodies[0];
  if (!journeys.length) {
    body.replaceChildren(
      h("tr", { class: "placeholder" }, h("td", { colspan: 8 }, "The policy has no journeys.")),
    );
    return;
  }
  body.replaceChildren(...journeys.map((journey) => journeyRow(journey, chosen)));
}

function journeyRow(journey, chosen) {
  const link = `journeys.html?journey=${encodeURIComponent(journey.id)}`;
  return h(
    "tr",
    {
      class: "journey-row",
      "data-journey": journey.id,
      "data-entered": journey.entered,
      "data-active": journey.active,
      "data-converted": journey.converted,
      "aria-current": journey.id === chosen ? "true" : null,
    },
    h(
      "th",
      { scope: "row" },
      h("a", { href: link }, journey.id),
      journey.in_policy ? null : h("span", {}, " ", chip("not in the policy", { class: "warn" })),
      journey.description ? h("span", { class: "jg-summary" }, journey.description) : null,
    ),
    h("td", { class: "num" }, integer.format(journey.versions.length)),
    h("td", { class: "num" }, integer.format(journey.entered)),
    h("td", { class: "num" }, integer.format(journey.active)),
    h("td", { class: "num" }, integer.format(journey.converted)),
    h("td", { class: "small-text" }, reasonsText(journey.exited)),
    h("td", { class: "num" }, conversionText(journey.conversion.treatment)),
    h("td", { class: "num" }, conversionText(journey.conversion.control)),
  );
}

// ---------------------------------------------------------------- one journey

function renderJourney(detail, wanted) {
  const versions = detail.versions;
  const version = versions.find((v) => v.version === wanted) ?? versions[0];
  byId("journey").hidden = false;
  byId("journey").dataset.journey = detail.id;
  byId("journey").dataset.version = version.version;
  byId("journey-name").textContent = detail.id;
  byId("journey-description").textContent = detail.description;
  renderVersionPicker(detail, version);
  renderDefinition(version);
  renderJourneyKpis(version);
  renderGraph(version);
  renderNodeTable(version);
}

function renderVersionPicker(detail, version) {
  const choice = byId("version-choice");
  const picker = byId("version-picker");
  choice.hidden = detail.versions.length < 2;
  picker.replaceChildren(
    ...detail.versions.map((v) =>
      h(
        "option",
        { value: v.version, selected: v.version === version.version },
        `${v.version}${v.current ? " (current)" : ""} · ${integer.format(v.entered)} entered`,
      ),
    ),
  );
  picker.value = version.version;
}

/** "order_completed where <condition>" for an event match. */
function eventText(match) {
  return `${match.event}${match.when ? ` where ${match.when}` : ""}`;
}

function renderDefinition(version) {
  const entry = version.entry
    ? version.entry.event
      ? eventText(version.entry)
      : `when ${version.entry.condition} becomes true`
    : "–";
  const goal = version.goal
    ? `${eventText(version.goal)}${version.goal.exits ? " (ends the run)" : ""}`
    : "none";
  const exits = (version.exits ?? [])
    .map((rule) => `${rule.event ? eventText(rule) : rule.when} → ${rule.reason}`)
    .join("; ");
  const facts = [
    ["Version", `${version.version}${version.current ? " (current)" : " (earlier)"}`],
    ["Entry", entry],
    ["Goal", goal],
    ["Exits", exits || "none"],
    ["Lasts at most", version.max_duration ?? "–"],
  ];
  byId("journey-definition").replaceChildren(
    ...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

function renderJourneyKpis(version) {
  const kpi = (label, value, name) =>
    h(
      "div",
      { class: "kpi", "data-kpi": name },
      h("span", { class: "kpi-label" }, label),
      h("span", { class: "kpi-value" }, value),
    );
  byId("journey-kpis").replaceChildren(
    kpi("Entered", integer.format(version.entered), "entered"),
    kpi("Active now", integer.format(version.active), "active"),
    kpi("Converted", integer.format(version.converted), "converted"),
    kpi("Exited", integer.format(sumOf(version.exited)), "exited"),
    kpi("Conversion treated", conversionText(version.conversion.treatment), "treatment"),
    kpi("Conversion control", conversionText(version.conversion.control), "control"),
  );
}

function renderNodeTable(version) {
  byId("journey-nodes").tBodies[0].replaceChildren(
    ...version.nodes.map((node) =>
      h(
        "tr",
        { "data-node": node.name, "data-runs-now": node.runs_now },
        h("th", { scope: "row" }, node.name, " ", kindChip(node.kind)),
        h("td", { class: "small-text" }, node.does ?? "–"),
        h("td", { class: "num" }, integer.format(node.runs_now)),
        h("td", { class: "num" }, integer.format(node.entered)),
        h("td", { class: "small-text" }, reasonsText(node.suppressed)),
        h("td", { class: "small-text" }, reasonsText(node.exited)),
        h("td", { class: "num" }, integer.format(node.converted)),
      ),
    ),
  );
}

// ---------------------------------------------------------------- the graph

/** The lines a node's box shows: [{text, class, data}]. */
function nodeLines(node) {
  const lines = [{ text: node.does ?? "", class: "jg-does" }];
  const waits = node.kind === "wait" || node.kind === "wait_for";
  if (waits || node.runs_now) {
    lines.push({ text: `now ${integer.format(node.runs_now)}`, class: "jg-count now" });
  }
  if (node.start) {
    lines.push({ text: `entered ${integer.format(node.entered)}`, class: "jg-count entered" });
  }
  if (node.converted) {
    const text = `converted ${integer.format(node.converted)}`;
    lines.push({ text, class: "jg-count converted" });
  }
  for (const [reason, count] of Object.entries(node.suppressed)) {
    lines.push({
      text: `suppressed · ${reason} ${integer.format(count)}`,
      class: "jg-count suppressed",
      data: { "data-suppressed-reason": reason, "data-count": count },
    });
  }
  const exited = { ...node.exited };
  if (node.kind === "exit" && node.reason && !(node.reason in exited)) exited[node.reason] = 0;
  for (const [reason, count] of Object.entries(exited)) {
    lines.push({
      text: `exited · ${reason} ${integer.format(count)}`,
      class: "jg-count exited",
      data: { "data-exit-reason": reason, "data-count": count },
    });
  }
  return lines;
}

/** The CSS fonts of a node's name and of its other lines, as the page draws them. */
function fonts() {
  const family = getComputedStyle(document.body).fontFamily || "sans-serif";
  return { name: `700 13px ${family}`, line: `600 11.5px ${family}` };
}

function nodeBox(node) {
  const font = fonts();
  const lines = nodeLines(node);
  const wanted = Math.max(
    textWidth(node.name, font.name) + 70,
    ...lines.map((line) => textWidth(line.text, font.line)),
  );
  const width = Math.min(NODE_MAX_WIDTH, Math.max(NODE_MIN_WIDTH, wanted + 2 * NODE_PADDING));
  for (const line of lines) line.text = fitText(line.text, font.line, width - 2 * NODE_PADDING);
  return { width, height: 30 + lines.length * LINE_HEIGHT + 6, lines };
}

/** The edges between one pair of nodes, drawn as one path with a line per label. */
function edgeGroups(version) {
  const known = new Set(version.nodes.map((node) => node.name));
  const groups = new Map();
  for (const edge of version.edges) {
    if (edge.to === null || !known.has(edge.from) || !known.has(edge.to)) continue;
    const key = `${edge.from}\u0000${edge.to}`;
    if (!groups.has(key)) groups.set(key, { from: edge.from, to: edge.to, edges: [] });
    groups.get(key).edges.push(edge);
  }
  return [...groups.values()];
}

function labelBox(lines) {
  const width = Math.max(...lines.map((line) => textWidth(line, fonts().line))) + 12;
  return { width, height: lines.length * 14 + 6 };
}

/** The dagre graph of a version: its nodes, an entry node and the edge groups. */
function layout(version) {
  const graph = new window.dagre.graphlib.Graph({ multigraph: true });
  graph.setGraph({ ...GRAPH_LAYOUT });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const node of version.nodes) graph.setNode(node.name, { ...nodeBox(node), node });
  for (const group of edgeGroups(version)) setEdgeGroup(graph, group);
  if (version.start) {
    const entered = version.nodes.find((node) => node.name === version.start)?.entered ?? 0;
    const text = version.entry?.event ?? "condition";
    const width = textWidth(text, fonts().name) + 40;
    graph.setNode(ENTRY_NODE, { width, height: 28, entry: text });
    const edge = { from: ENTRY_NODE, label: "entered", to: version.start, count: entered };
    setEdgeGroup(graph, { from: ENTRY_NODE, to: version.start, edges: [edge] });
  }
  window.dagre.layout(graph);
  return graph;
}

function setEdgeGroup(graph, group) {
  const lines = group.edges.map((edge) => `${edge.label} ${integer.format(edge.count)}`);
  const label = { ...labelBox(lines), labelpos: "c", group };
  graph.setEdge(group.from, group.to, label, `${group.from}>${group.to}`);
}

/** A smooth path through dagre's edge points. */
function pathThrough(points) {
  let d = `M${points[0].x},${points[0].y}`;
  if (points.length === 2) return `${d} L${points[1].x},${points[1].y}`;
  for (let i = 1; i < points.length - 1; i += 1) {
    const here = points[i];
    const next = points[i + 1];
    const last = i === points.length - 2;
    const x = last ? next.x : (here.x + next.x) / 2;
    const y = last ? next.y : (here.y + next.y) / 2;
    d += ` Q${here.x},${here.y} ${x},${y}`;
  }
  return d;
}

function drawNode(name, box) {
  const x = box.x - box.width / 2;
  const y = box.y - box.height / 2;
  if (box.entry !== undefined) {
    return svg(
      "g",
      { class: "jg-node jg-entry", "data-node": ENTRY_NODE, transform: `translate(${x},${y})` },
      svg("rect", { class: "jg-entry-box", width: box.width, height: box.height, rx: 14 }),
      svg(
        "text",
        { class: "jg-entry-text", x: box.width / 2, y: 18, "text-anchor": "middle" },
        box.entry,
      ),
    );
  }
  const node = box.node;
  const kind = kindOf(node.kind);
  const group = svg(
    "g",
    {
      class: "jg-node",
      "data-node": name,
      "data-kind": node.kind ?? "unknown",
      "data-runs-now": node.runs_now,
      "data-entered": node.entered,
      "data-converted": node.converted,
      "data-suppressed": sumOf(node.suppressed),
      "data-exited": sumOf(node.exited),
      transform: `translate(${x},${y})`,
      style: `--kind:${kind.color}`,
    },
    svg("title", {}, `${node.name}: ${node.does ?? kind.label}`),
    svg("rect", { class: "jg-node-box", width: box.width, height: box.height, rx: 8 }),
    svg("rect", { class: "jg-node-bar", width: 5, height: box.height, rx: 2 }),
    svg("text", { class: "jg-kind", x: NODE_PADDING, y: 14 }, kind.label),
    svg("text", { class: "jg-name", x: NODE_PADDING, y: 30 }, node.name),
  );
  box.lines.forEach((line, index) => {
    const y = 30 + (index + 1) * LINE_HEIGHT;
    group.append(svg("text", { class: line.class, x: NODE_PADDING, y, ...line.data }, line.text));
  });
  return group;
}

function drawEdge(edge, widest) {
  const { group, points, x, y, width, height } = edge;
  const total = group.edges.reduce((sum, e) => sum + e.count, 0);
  const stroke = 1.4 + 3.6 * Math.sqrt(widest ? total / widest : 0);
  const label = svg(
    "g",
    { class: "jg-edge-label", transform: `translate(${x - width / 2},${y - height / 2})` },
    svg("rect", { class: "jg-edge-label-box", width, height, rx: 5 }),
  );
  group.edges.forEach((e, index) => {
    label.append(
      svg(
        "text",
        {
          class: "jg-edge-line",
          x: 6,
          y: 14 + index * 14,
          "data-from": e.from,
          "data-to": e.to,
          "data-label": e.label,
          "data-count": e.count,
        },
        `${e.label} ${integer.format(e.count)}`,
      ),
    );
  });
  return svg(
    "g",
    { class: "jg-edge", "data-from": group.from, "data-to": group.to, "data-count": total },
    svg("path", {
      class: "jg-edge-path",
      d: pathThrough(points),
      "stroke-width": stroke.toFixed(2),
      "marker-end": "url(#jg-arrow)",
    }),
    label,
  );
}

function renderGraph(version) {
  const box = byId("graph");
  const note = byId("graph-note");
  note.hidden = true;
  if (!window.dagre?.layout) {
    box.dataset.graph = "unavailable";
    box.replaceChildren();
    note.textContent =
      "The graph layout library is not installed (run deploy/local/ui_vendor.sh); " +
      "the table below shows the same numbers.";
    note.hidden = false;
    return;
  }
  if (!version.known) {
    note.textContent =
      "This worker no longer has this version's definition (it restarted after a policy " +
      "reload): its nodes are drawn from their counts, without edges.";
    note.hidden = false;
  }
  const graph = layout(version);
  const edges = graph.edges().map((id) => graph.edge(id));
  const widest = Math.max(0, ...edges.map((e) => e.group.edges.reduce((s, x) => s + x.count, 0)));
  const { width, height } = graph.graph();
  const drawing = svg(
    "svg",
    {
      xmlns: SVG_NS,
      width: Math.ceil(width),
      height: Math.ceil(height),
      viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`,
      role: "img",
      "aria-label": `Flow graph of ${version.version}`,
      "data-version": version.version,
    },
    svg(
      "defs",
      {},
      svg(
        "marker",
        {
          id: "jg-arrow",
          viewBox: "0 0 10 10",
          refX: 9,
          refY: 5,
          markerUnits: "userSpaceOnUse", // the same head on a thin or a thick edge
          markerWidth: 9,
          markerHeight: 9,
          orient: "auto-start-reverse",
        },
        svg("path", { class: "jg-arrow", d: "M0,0 L10,5 L0,10 z" }),
      ),
    ),
    svg("g", { class: "jg-edges" }, edges.map((edge) => drawEdge(edge, widest))),
    svg("g", { class: "jg-nodes" }, graph.nodes().map((name) => drawNode(name, graph.node(name)))),
  );
  box.replaceChildren(drawing);
  box.dataset.graph = "drawn";
  renderLegend(version);
}

function renderLegend(version) {
  const kinds = [...new Set(version.nodes.map((node) => node.kind).filter(Boolean))];
  byId("graph-legend").replaceChildren(
    ...kinds.map((kind) => kindChip(kind)),
    chip("now: runs at the node", { class: "soft" }),
    chip("edge: times taken", { class: "soft" }),
  );
}

// ---------------------------------------------------------------- load and refresh

async function fetchJourneys() {
  const list = await api("journeys");
  const journeys = list.journeys ?? [];
  const wanted = selection();
  const chosen = wanted.journey || journeys[0]?.id || "";
  const detail = chosen ? await api(`journeys/${encodeURIComponent(chosen)}`) : null;
  return { journeys, chosen, detail, version: wanted.version };
}

function renderJourneysPage({ journeys, chosen, detail, version }) {
  renderJourneyList(journeys, chosen);
  if (detail) renderJourney(detail, version || detail.current_version);
  else byId("journey").hidden = true;
  journeysPage.detail = detail;
  const refreshes = Number(document.body.dataset.refreshes ?? 0) + 1;
  document.body.dataset.refreshes = String(refreshes);
  byId("refreshed").textContent = `Updated ${formatTime(Date.now())}`;
}

function scheduleRefresh() {
  window.clearTimeout(journeysPage.timer);
  journeysPage.timer = window.setTimeout(refreshJourneys, JOURNEYS_REFRESH_MS);
}

/** A refresh keeps the last numbers on screen when the worker does not answer. */
async function refreshJourneys() {
  if (document.hidden) {
    scheduleRefresh();
    return;
  }
  try {
    renderJourneysPage(await fetchJourneys());
    if (byId("message").dataset.kind === "stale") clearMessage();
  } catch (error) {
    if (error instanceof ApiError && (error.isAuth || error.code === "no_token")) {
      showError(error, "Journey");
      return; // the token form starts the page again
    }
    showMessage("stale", "The last refresh failed;", `showing earlier numbers (${error.message}).`);
  }
  scheduleRefresh();
}

async function loadJourneysPage() {
  window.clearTimeout(journeysPage.timer);
  renderJourneysPage(await fetchJourneys());
  scheduleRefresh();
}

function wireVersionPicker() {
  byId("version-picker").addEventListener("change", (changed) => {
    const detail = journeysPage.detail;
    if (!detail) return;
    select(detail.id, changed.target.value);
    renderJourney(detail, changed.target.value);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page !== "journeys") return;
  wireVersionPicker();
  startPage(loadJourneysPage, "Journey");
});
