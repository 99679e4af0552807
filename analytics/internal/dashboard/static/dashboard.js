// Sluice usage dashboard: polls the query API for the chosen range (last
// hour, day, 7 days or custom), which the server sums by a step (auto: 1m
// for an hour, 5m for a day, 1h for 7 days), and draws it.
(function () {
  "use strict";
  var POLL_MS = 10000;
  var TOKEN_KEY = "sluice.analytics.token";
  var RANGES = { "1h": "Last hour", "24h": "Last day", "7d": "Last 7 days" };
  var charts = {};
  var state = readState();

  // The view lives in the query string (?range=7d&api=orders&key=...), so
  // a view can be bookmarked; the token never does.
  function readState() {
    var q = new URLSearchParams(location.search), s = {
      range: q.get("range") || "1h", from: q.get("from") || "", to: q.get("to") || "",
      api: q.get("api") || "", key: q.get("key") || ""
    };
    if (s.range !== "custom" && !RANGES[s.range]) { s.range = "1h"; }
    if (s.range === "custom" && (!s.from || !s.to)) { s.range = "1h"; }
    return s;
  }

  function writeState() {
    var q = new URLSearchParams();
    q.set("range", state.range);
    if (state.range === "custom") { q.set("from", state.from); q.set("to", state.to); }
    if (state.api) { q.set("api", state.api); }
    if (state.key) { q.set("key", state.key); }
    history.replaceState(null, "", location.pathname + "?" + q.toString());
  }

  function rangeQuery() {
    if (state.range === "custom") {
      return "from=" + encodeURIComponent(state.from) + "&to=" + encodeURIComponent(state.to);
    }
    return "from=-" + state.range;
  }

  // The token: asked for once (the form, or a #token=... link, which is
  // taken out of the address bar at once) and kept in localStorage. It is
  // sent as Authorization: Bearer on every query; a 401 forgets it and
  // asks again. Without one, queries go out bare (auth.disabled).
  function token() {
    var m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      localStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return localStorage.getItem(TOKEN_KEY) || "";
  }

  function askToken(why) {
    document.getElementById("login-why").textContent = why;
    document.getElementById("login").hidden = false;
    document.getElementById("token").focus();
  }

  function Unauthorized() { this.message = "token missing or refused"; }

  function get(url) {
    var t = token(), headers = {};
    if (t) { headers.Authorization = "Bearer " + t; }
    return fetch(url, { cache: "no-store", headers: headers }).then(function (r) {
      if (r.status === 401) { throw new Unauthorized(); }
      return r.json().then(function (body) {
        if (!r.ok) {
          throw new Error(body && body.error ? body.error.message : url + ": HTTP " + r.status);
        }
        return body;
      });
    });
  }

  function num(n) { return n ? n.toLocaleString("en-US") : "0"; }
  function units(n) { return n ? n.toLocaleString("en-US") : "–"; }
  function pct(n, d) { return d ? (100 * n / d).toFixed(1) + "%" : "–"; }

  // keyName is what a key is shown as: its alias, else its key id; never
  // its hash (only the first characters, for a key no event named).
  function keyName(it) {
    if (it.name === "-") { return "(keyless)"; }
    if (it.name === "~other") { return "(other keys)"; }
    if (it.key_alias) { return it.key_alias; }
    if (it.key_id === "jwt") { return "(token identity)"; }
    if (it.key_id) { return "(no alias)"; }
    return "(unnamed " + it.name.slice(0, 8) + "…)";
  }

  function fillTable(id, rows, onclick) {
    var body = document.querySelector("#" + id + " tbody");
    body.textContent = "";
    rows.forEach(function (r, i) {
      var tr = document.createElement("tr");
      r.forEach(function (c) {
        var td = document.createElement("td");
        td.textContent = c;
        tr.appendChild(td);
      });
      if (onclick) { tr.addEventListener("click", function () { onclick(i); }); }
      body.appendChild(tr);
    });
  }

  function statusCells(p) {
    return [num(p.requests), num(p.status["2xx"]), num(p.status["3xx"]), num(p.status["4xx"]), num(p.status["5xx"]),
      pct(p.errors, p.requests), pct(p.limited, p.requests), units(p.units)];
  }

  function cards(id, t) {
    var el = document.getElementById(id);
    el.textContent = "";
    [["requests", num(t.requests)], ["error rate (5xx)", pct(t.errors, t.requests)],
      ["client errors (4xx)", pct(t.status["4xx"], t.requests)], ["limited rate", pct(t.limited, t.requests)],
      ["units", units(t.units)], ["p99 latency", t.p99_ms + " ms"]].forEach(function (c) {
      var d = document.createElement("div"), b = document.createElement("b"), s = document.createElement("span");
      d.className = "card";
      b.textContent = c[1];
      s.textContent = c[0];
      d.appendChild(b);
      d.appendChild(s);
      el.appendChild(d);
    });
  }

  function chart(parentId, title, series, data) {
    var key = parentId + "/" + title;
    if (charts[key]) { charts[key].setData(data); return; }
    var el = document.createElement("div");
    document.getElementById(parentId).appendChild(el);
    var opts = { title: title, width: 440, height: 210, series: [{}].concat(series), axes: [{}, { size: 64 }] };
    charts[key] = new uPlot(opts, data, el);
  }

  function drawCharts(parentId, u) {
    var t = [], c2 = [], c3 = [], c4 = [], c5 = [], err = [], lim = [], p50 = [], p95 = [], p99 = [], un = [];
    u.series.forEach(function (p) {
      t.push(Date.parse(p.t) / 1000);
      c2.push(p.status["2xx"]); c3.push(p.status["3xx"]); c4.push(p.status["4xx"]); c5.push(p.status["5xx"]);
      err.push(p.requests ? 100 * p.errors / p.requests : 0);
      lim.push(p.requests ? 100 * p.limited / p.requests : 0);
      p50.push(p.p50_ms); p95.push(p.p95_ms); p99.push(p.p99_ms);
      un.push(p.units);
    });
    chart(parentId, "requests per " + u.step + " by status class", [
      { label: "2xx", stroke: "#393" }, { label: "3xx", stroke: "#2a6fdb" },
      { label: "4xx", stroke: "#e90" }, { label: "5xx", stroke: "#d33" }], [t, c2, c3, c4, c5]);
    chart(parentId, "error and limited rate %", [{ label: "errors (5xx)", stroke: "#d33" },
      { label: "limited", stroke: "#e90" }], [t, err, lim]);
    chart(parentId, "latency ms", [{ label: "p50", stroke: "#393" }, { label: "p95", stroke: "#e90" },
      { label: "p99", stroke: "#d33" }], [t, p50, p95, p99]);
    if (u.totals.units > 0 || charts[parentId + "/units per " + u.step]) {
      chart(parentId, "units per " + u.step, [{ label: "units", stroke: "#7a3fc4" }], [t, un]);
    }
  }

  function fillAPIs(items) {
    var sel = document.getElementById("api"), names = items.map(function (a) { return a.name; });
    if (state.api && names.indexOf(state.api) < 0) { names.push(state.api); }
    names.sort();
    sel.textContent = "";
    [""].concat(names).forEach(function (n) {
      var o = document.createElement("option");
      o.value = n;
      o.textContent = n || "all APIs";
      sel.appendChild(o);
    });
    sel.value = state.api;
  }

  function overview(rq) {
    var api = state.api ? "&api=" + encodeURIComponent(state.api) : "";
    return Promise.all([
      get("v1/usage/top?by=api&limit=100&" + rq),
      get("v1/usage?" + rq + api),
      get("v1/usage/top?by=key&limit=10&" + rq + api),
      get("v1/usage/top?by=endpoint&limit=10&" + rq + api)
    ]).then(function (r) {
      fillAPIs(r[0].items);
      fillTable("apis", r[0].items.map(function (a) {
        return [a.name].concat(statusCells(a), [a.p50_ms, a.p95_ms, a.p99_ms]);
      }));
      cards("cards", r[1].totals);
      drawCharts("charts", r[1]);
      var keys = r[2].items;
      fillTable("keys", keys.map(function (k) {
        return [keyName(k), k.key_id || "–"].concat(statusCells(k));
      }), function (i) { drill(keys[i].name); });
      fillTable("endpoints", r[3].items.map(function (e) {
        return [e.name === "-" ? "(no endpoint)" : e.name, e.api].concat(statusCells(e), [e.p99_ms]);
      }));
      return r[1];
    });
  }

  function drillDown(rq) {
    var k = encodeURIComponent(state.key);
    return Promise.all([get("v1/usage?key=" + k + "&" + rq), get("v1/usage/top?by=api&limit=100&key=" + k + "&" + rq)])
      .then(function (r) {
        var u = r[0];
        document.getElementById("drill-name").textContent =
          keyName({ name: state.key, key_id: u.key_id, key_alias: u.key_alias }) + (u.key_id ? " · key id " + u.key_id : "");
        cards("drill-cards", u.totals);
        drawCharts("drill-charts", u);
        fillTable("drill-apis", r[1].items.map(function (a) { return [a.name].concat(statusCells(a), [a.p99_ms]); }));
        return u;
      });
  }

  function drill(hash) {
    state.key = hash;
    writeState();
    refresh();
  }

  function showRange(u) {
    var label = state.range === "custom" ? "From " + new Date(u.from).toLocaleString() + " to " + new Date(u.to).toLocaleString()
      : RANGES[state.range];
    document.getElementById("range-label").textContent = label + " · " + u.series.length + " points of " + u.step +
      (state.api ? " · API " + state.api : " · all APIs");
    document.querySelectorAll("#ranges button").forEach(function (b) {
      b.className = b.getAttribute("data-range") === state.range ? "on" : "";
    });
    document.getElementById("custom").hidden = state.range !== "custom";
  }

  function refresh() {
    // While the form asks for a token, polling would only be refused.
    if (!document.getElementById("login").hidden) { return Promise.resolve(); }
    var rq = rangeQuery();
    document.getElementById("drill").hidden = !state.key;
    document.getElementById("overview").hidden = !!state.key;
    return (state.key ? drillDown(rq) : overview(rq)).then(function (u) {
      showRange(u);
      document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
    }).catch(function (e) {
      if (e instanceof Unauthorized) {
        var had = token() !== "";
        localStorage.removeItem(TOKEN_KEY);
        askToken(had ? "The stored token was refused: enter a valid one." :
          "This dashboard needs a token (the analytics worker's auth.token or one of its auth.tokens_file).");
      }
      document.getElementById("status").textContent = "error: " + e.message;
    });
  }

  function localInput(iso) {
    var d = new Date(iso);
    if (isNaN(d)) { return ""; }
    d = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 16);
  }

  document.querySelectorAll("#ranges button").forEach(function (b) {
    b.addEventListener("click", function () {
      var r = b.getAttribute("data-range");
      if (r === "custom") {
        document.getElementById("custom").hidden = false;
        if (!document.getElementById("from").value) {
          document.getElementById("from").value = localInput(new Date(Date.now() - 86400000).toISOString());
          document.getElementById("to").value = localInput(new Date().toISOString());
        }
        return;
      }
      state.range = r;
      writeState();
      refresh();
    });
  });
  document.getElementById("custom").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var f = new Date(document.getElementById("from").value), t = new Date(document.getElementById("to").value);
    if (isNaN(f) || isNaN(t)) { return; }
    state.range = "custom";
    state.from = f.toISOString();
    state.to = t.toISOString();
    writeState();
    refresh();
  });
  document.getElementById("api").addEventListener("change", function (ev) {
    state.api = ev.target.value;
    writeState();
    refresh();
  });
  document.getElementById("drill-close").addEventListener("click", function () {
    state.key = "";
    writeState();
    refresh();
  });
  document.getElementById("login").addEventListener("submit", function (ev) {
    ev.preventDefault();
    localStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
    document.getElementById("token").value = "";
    document.getElementById("login").hidden = true;
    refresh();
  });
  document.getElementById("forget").addEventListener("click", function (ev) {
    ev.preventDefault();
    localStorage.removeItem(TOKEN_KEY);
    askToken("Token forgotten.");
  });

  token(); // takes a #token= link in before the address bar is rewritten
  if (state.range === "custom") {
    document.getElementById("from").value = localInput(state.from);
    document.getElementById("to").value = localInput(state.to);
  }
  writeState();
  refresh();
  setInterval(refresh, POLL_MS);
})();
