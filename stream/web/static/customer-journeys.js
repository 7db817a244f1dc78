// Journey Stream web page: the customer page's "Journeys" section (customer.html, the
// element #customer-journeys). Lists the journeys the customer is in now: journey, node,
// since when, next step, end by, group; from GET /customers/{id}. Kept apart from app.js,
// whose helpers it uses (h, byId, api, currentToken, timeElement, chip); every value from
// the API reaches the page through textContent or an attribute, never as HTML.
"use strict";

function customerJourneyRow(run) {
  const query = new URLSearchParams({ journey: run.journey, version: run.version });
  const link = `journeys.html?${query}`;
  return h(
    "tr",
    { "data-journey": run.journey, "data-node": run.node, "data-version": run.version },
    h("th", { scope: "row" }, h("a", { href: link, title: run.version }, run.journey)),
    h("td", {}, h("code", {}, run.node)),
    h("td", {}, timeElement(run.since)),
    h("td", {}, timeElement(run.next_step_at)),
    h("td", {}, timeElement(run.ends_by)),
    h("td", {}, chip(run.group, { class: `group ${run.group}` })),
  );
}

function renderCustomerJourneys(box, runs) {
  const head = h(
    "div",
    { class: "card-head" },
    h("h2", { id: "customer-journeys-title" }, "Journeys"),
    h("span", { class: "hint" }, "the multi-step journeys this customer is in now"),
  );
  const body = runs.length
    ? h(
        "table",
        { class: "table compact" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Journey", "Node", "Since", "Next step", "Ends by", "Group"].map((title) =>
              h("th", { scope: "col" }, title),
            ),
          ),
        ),
        h("tbody", {}, runs.map(customerJourneyRow)),
      )
    : h("p", { class: "empty" }, "Not in any journey now.");
  box.replaceChildren(head, body);
  box.setAttribute("aria-labelledby", "customer-journeys-title");
  box.dataset.runs = String(runs.length);
  box.hidden = false;
}

/** Fills the section; on any error it stays hidden (the page's own load shows why). */
async function loadCustomerJourneys() {
  const box = byId("customer-journeys");
  const customerId = (new URLSearchParams(window.location.search).get("id") ?? "").trim();
  if (!box || !customerId || !currentToken()) return;
  try {
    const customer = await api(`customers/${encodeURIComponent(customerId)}`);
    renderCustomerJourneys(box, customer.journeys ?? []);
  } catch {
    box.hidden = true;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page !== "customer") return;
  loadCustomerJourneys();
  byId("auth-form")?.addEventListener("submit", () => loadCustomerJourneys());
});
