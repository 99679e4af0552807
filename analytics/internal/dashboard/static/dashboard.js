// Sluice usage dashboard: polls the query API and draws the last hour.
(function () {
  "use strict";
  var POLL_MS = 5000;
  var TOKEN_KEY = "sluice.analytics.token";
  var charts = {};

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
      if (!r.ok) { throw new Error(url + ": HTTP " + r.status); }
      return r.json();
    });
  }

  function cell(tr, text) {
    var td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
  }

  function fillTable(id, rows) {
    var body = document.querySelector("#" + id + " tbody");
    body.textContent = "";
    rows.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (c) { cell(tr, c); });
      body.appendChild(tr);
    });
  }

  function chart(id, title, parent, series, data) {
    var key = id + "/" + title;
    if (charts[key]) { charts[key].setData(data); return; }
    var el = document.createElement("div");
    parent.appendChild(el);
    var opts = { title: title, width: 420, height: 200, series: [{}].concat(series) };
    charts[key] = new uPlot(opts, data, el);
  }

  function apiSection(api) {
    var id = "api-" + api.replace(/[^A-Za-z0-9_-]/g, "_");
    var sec = document.getElementById(id);
    if (!sec) {
      sec = document.createElement("div");
      sec.className = "api";
      sec.id = id;
      var h = document.createElement("h3");
      h.textContent = api;
      sec.appendChild(h);
      var row = document.createElement("div");
      row.className = "row";
      sec.appendChild(row);
      document.getElementById("charts").appendChild(sec);
    }
    return sec;
  }

  function drawAPI(api, usage) {
    var sec = apiSection(api), row = sec.querySelector(".row");
    var t = [], req = [], err = [], lim = [], p50 = [], p95 = [], p99 = [];
    usage.series.forEach(function (p) {
      t.push(Date.parse(p.t) / 1000);
      req.push(p.requests);
      err.push(p.requests ? p.errors / p.requests : 0);
      lim.push(p.requests ? p.limited / p.requests : 0);
      p50.push(p.p50_ms); p95.push(p.p95_ms); p99.push(p.p99_ms);
    });
    chart(sec.id, "requests / min", row, [{ label: "requests", stroke: "#2a6fdb" }], [t, req]);
    chart(sec.id, "error and limited rate", row,
      [{ label: "errors", stroke: "#d33" }, { label: "limited", stroke: "#e90" }], [t, err, lim]);
    chart(sec.id, "latency ms", row,
      [{ label: "p50", stroke: "#393" }, { label: "p95", stroke: "#e90" }, { label: "p99", stroke: "#d33" }],
      [t, p50, p95, p99]);
  }

  function refresh() {
    // While the form asks for a token, polling would only be refused.
    if (!document.getElementById("login").hidden) { return Promise.resolve(); }
    var range = "from=-1h";
    return Promise.all([
      get("v1/usage/top?by=api&limit=20&" + range),
      get("v1/usage/top?by=key&limit=10&" + range)
    ]).then(function (res) {
      var apis = res[0].items, keys = res[1].items;
      fillTable("apis", apis.map(function (a) {
        return [a.name, a.requests, a.status["2xx"], a.status["3xx"], a.status["4xx"], a.status["5xx"],
          a.errors, a.limited, a.p50_ms, a.p95_ms, a.p99_ms];
      }));
      fillTable("keys", keys.map(function (k) { return [k.name, k.requests, k.errors, k.limited]; }));
      return Promise.all(apis.map(function (a) {
        return get("v1/usage?api=" + encodeURIComponent(a.name) + "&step=1m&" + range)
          .then(function (u) { drawAPI(a.name, u); });
      }));
    }).then(function () {
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

  refresh();
  setInterval(refresh, POLL_MS);
})();
