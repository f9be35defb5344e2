// dcrgate console: reads the registry through the console's read-only JSON API (api/...,
// relative to the page) and renders it. Everything from the API is put in the page with
// textContent or as an attribute value, never parsed as HTML. The page's state is its URL
// query (filters, ?client=, ?range=), so every view can be linked, bookmarked and reloaded.
"use strict";

(function () {
  const params = new URLSearchParams(location.search);
  // The registry selectors travel with every link and API call.
  const selectors = ["endpoint", "server"];
  const listParams = ["org_id", "software_id", "token_endpoint_auth_method", "status",
    "created_from", "created_to", "updated_from", "updated_to", "cursor", "limit"];

  const $ = (id) => document.getElementById(id);

  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // pageURL is a link to this page with the selectors kept and extra set.
  function pageURL(extra) {
    const q = new URLSearchParams();
    for (const s of selectors) if (params.get(s)) q.set(s, params.get(s));
    for (const [k, v] of Object.entries(extra || {})) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
    const qs = q.toString();
    return qs ? "?" + qs : "./";
  }

  async function api(path, query) {
    const q = new URLSearchParams();
    for (const s of selectors) if (params.get(s)) q.set(s, params.get(s));
    for (const [k, v] of Object.entries(query || {})) q.set(k, v);
    const qs = q.toString();
    // Resolved against the page without its userinfo: a page opened as user:pass@host/console/
    // would otherwise give URLs that fetch refuses; the browser's auth cache authenticates.
    const url = new URL("api/" + path + (qs ? "?" + qs : ""), location.href);
    url.username = "";
    url.password = "";
    const resp = await fetch(url, { headers: { Accept: "application/json" } });
    let body = null;
    try { body = await resp.json(); } catch (e) { /* not JSON: reported below */ }
    if (!resp.ok) {
      const msg = body && (body.error_description || body.error) ? (body.error || "") + ": " + (body.error_description || "") : "";
      const err = new Error(resp.status + " " + (msg || resp.statusText));
      err.status = resp.status;
      throw err;
    }
    return body;
  }

  function showError(node, err) {
    node.textContent = String(err && err.message ? err.message : err);
    node.className = "error";
  }

  function fmtTime(s) {
    if (!s) return "";
    const d = new Date(s);
    if (isNaN(d.getTime())) return String(s);
    return d.toISOString().slice(0, 19).replace("T", " ") + "Z";
  }

  // A day (2026-12-01) is the whole day; anything else goes to the API as typed.
  function rfc3339(v, endOfDay) {
    return /^\d{4}-\d{2}-\d{2}$/.test(v) ? v + (endOfDay ? "T23:59:59Z" : "T00:00:00Z") : v;
  }

  function row(cells) {
    const tr = el("tr");
    for (const c of cells) {
      if (c instanceof Node) {
        const td = el("td");
        td.appendChild(c);
        tr.appendChild(td);
      } else {
        tr.appendChild(el("td", c));
      }
    }
    return tr;
  }

  async function showEndpoints() {
    const node = $("endpoints");
    try {
      const body = await api("endpoints");
      const list = body.endpoints || [];
      if (list.length === 0) {
        node.textContent = "no dcr handler in the running config";
        return;
      }
      node.appendChild(document.createTextNode(list.length === 1 ? "registry: " : "registries: "));
      list.forEach((e, i) => {
        if (i > 0) node.appendChild(document.createTextNode(" · "));
        const a = el("a", e.server + " " + e.endpoint + " (" + e.registrar + ")");
        const q = new URLSearchParams({ endpoint: e.endpoint, server: e.server });
        a.href = "?" + q.toString();
        node.appendChild(a);
      });
    } catch (err) {
      showError(node, err);
    }
  }

  async function showList() {
    $("list-view").hidden = false;
    const form = $("filters");
    for (const name of listParams.concat(selectors)) {
      if (form.elements[name] && params.get(name)) form.elements[name].value = params.get(name);
    }
    const query = {};
    for (const name of listParams) {
      const v = (params.get(name) || "").trim();
      if (v === "") continue;
      query[name] = name.endsWith("_from") ? rfc3339(v, false) : name.endsWith("_to") ? rfc3339(v, true) : v;
    }
    const status = $("list-status");
    const tbody = $("clients").tBodies[0];
    status.textContent = "Loading…";
    try {
      const body = await api("clients", query);
      clear(tbody);
      const clients = body.clients || [];
      for (const c of clients) {
        const link = el("a", c.client_id);
        link.href = pageURL({ client: c.client_id });
        const tr = row([link, clientName(c), c.org_id, c.software_id, c.token_endpoint_auth_method || "",
          c.status, fmtTime(c.issued_at), fmtTime(c.updated_at)]);
        tr.dataset.clientId = c.client_id;
        tr.dataset.orgId = c.org_id;
        tr.firstChild.className = "id";
        tbody.appendChild(tr);
      }
      status.textContent = clients.length === 0 ? "No registration matches." : "";
      status.className = "";
      $("clients").dataset.count = String(clients.length);
      const next = $("next-page");
      if (body.next_cursor) {
        const q = {};
        for (const name of listParams) if (params.get(name)) q[name] = params.get(name);
        q.cursor = body.next_cursor;
        next.href = pageURL(q);
        next.hidden = false;
      }
      const search = $("search");
      search.value = params.get("q") || "";
      search.addEventListener("input", () => filterRows(tbody, search.value));
      filterRows(tbody, search.value);
    } catch (err) {
      showError(status, err);
    }
  }

  // clientName is the registered client_name, else the software statement's.
  function clientName(c) {
    return c.client_name || (c.ssa_claims && typeof c.ssa_claims.software_client_name === "string" ? c.ssa_claims.software_client_name : "");
  }

  // filterRows hides the rows of the loaded page that do not contain text (any cell).
  function filterRows(tbody, text) {
    const needle = text.trim().toLowerCase();
    for (const tr of tbody.rows) tr.hidden = needle !== "" && !tr.textContent.toLowerCase().includes(needle);
  }

  const detailFields = [
    ["client_id", "client_id"], ["status", "status"], ["version", "version"], ["client_name", "client_name"],
    ["org_id", "org_id"], ["software_id", "software_id"], ["token_endpoint_auth_method", "auth method"],
    ["directory", "directory"], ["cert_subject", "certificate subject"], ["cert_thumbprint", "certificate thumbprint"],
    ["upstream", "in the backend too"], ["issued_at", "issued"], ["updated_at", "updated"], ["deleted_at", "deleted"],
  ];

  async function showDetail(clientID) {
    $("detail-view").hidden = false;
    $("detail-id").textContent = clientID;
    $("back").href = pageURL({});
    const status = $("detail-status");
    const [client, history] = await Promise.allSettled([
      api("clients/" + encodeURIComponent(clientID)),
      api("clients/" + encodeURIComponent(clientID) + "/history"),
    ]);
    const dl = $("detail-fields");
    if (client.status === "fulfilled") {
      const c = client.value;
      for (const [key, label] of detailFields) {
        if (c[key] === undefined || c[key] === null || c[key] === "") continue;
        dl.appendChild(el("dt", label));
        dl.appendChild(el("dd", key.endsWith("_at") ? fmtTime(c[key]) : c[key]));
      }
      if (!c.client_name && clientName(c)) {
        dl.appendChild(el("dt", "software_client_name"));
        dl.appendChild(el("dd", clientName(c)));
      }
      $("detail-metadata").textContent = JSON.stringify(c.metadata || {}, null, 2);
      $("detail-ssa").textContent = JSON.stringify(c.ssa_claims || {}, null, 2);
    } else if (client.reason.status === 404 && history.status === "fulfilled") {
      status.textContent = "This client is deleted: only its history is left.";
    } else {
      showError(status, client.reason);
    }
    if (history.status !== "fulfilled") {
      if (client.status === "fulfilled") showError(status, history.reason);
      return;
    }
    const h = history.value;
    const tbody = $("history").tBodies[0];
    for (const ev of h.events || []) {
      const tr = row([fmtTime(ev.time), ev.event, ev.operation || "", ev.status || "", ev.error || "", ev.reason || "", ev.actor || ""]);
      tr.dataset.event = ev.event;
      tbody.appendChild(tr);
    }
    if ((h.events || []).length === 0) tbody.appendChild(row(["no event within the history's retention", "", "", "", "", "", ""]));
    const rej = $("rejections").tBodies[0];
    for (const ev of h.rejections || []) {
      rej.appendChild(row([fmtTime(ev.time), ev.operation || "", ev.status || "", ev.error || "", ev.reason || ""]));
    }
    if ((h.rejections || []).length === 0) rej.appendChild(row(["none", "", "", "", ""]));
  }

  const outcomes = ["registered", "updated", "deleted", "rejected"];

  async function showCounts() {
    const range = params.get("range") === "30d" ? "30d" : "24h";
    for (const r of ["24h", "30d"]) {
      const a = $("range-" + r);
      a.href = pageURL(Object.assign(currentView(), { range: r }));
      if (r === range) a.className = "current";
    }
    const status = $("counts-status");
    try {
      const c = await api("counts", { range: range });
      for (const o of outcomes) $("count-" + o).textContent = String(c.totals[o]);
      $("counts-note").textContent = " — one bar per " + (range === "24h" ? "hour" : "day") + ", " + c.note;
      const chart = $("chart");
      let max = 1;
      for (const b of c.buckets) max = Math.max(max, outcomes.reduce((n, o) => n + b[o], 0));
      for (const b of c.buckets) {
        const col = el("div", null, "col");
        col.title = fmtTime(b.start) + ": " + outcomes.map((o) => o + " " + b[o]).join(", ");
        for (const o of outcomes) {
          if (!b[o]) continue;
          const seg = el("div", null, "seg " + o);
          seg.style.height = (100 * b[o] / max) + "%";
          col.appendChild(seg);
        }
        chart.appendChild(col);
      }
      if (c.buckets.length > 0) {
        $("axis-from").textContent = fmtTime(c.buckets[0].start);
        $("axis-to").textContent = fmtTime(c.buckets[c.buckets.length - 1].start);
      }
      const tbody = $("count-errors").tBodies[0];
      const codes = Object.entries(c.totals.errors || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
      for (const [code, n] of codes) {
        const tr = row([code, String(n)]);
        tr.lastChild.className = "num";
        tr.dataset.error = code;
        tbody.appendChild(tr);
      }
      if (codes.length === 0) tbody.appendChild(row(["no rejection", ""]));
    } catch (err) {
      showError(status, err);
    }
  }

  // currentView is the query of the list or detail view shown, for the range links.
  function currentView() {
    const q = {};
    for (const name of listParams.concat(["client", "q"])) if (params.get(name)) q[name] = params.get(name);
    return q;
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("home").href = pageURL({});
    $("reset").href = pageURL({});
    showEndpoints();
    const clientID = params.get("client");
    const view = clientID ? showDetail(clientID) : showList();
    Promise.allSettled([view, showCounts()]).then(() => { document.body.dataset.ready = "true"; });
  });
})();
