// Skyline web UI: graphs (uPlot) and the live Now list.  No inline scripts (CSP);
// everything that comes from data is inserted with textContent, never as HTML.
"use strict";

(function () {
  // The one time format of the UI (static/time.js): "2026-12-06 17:39:07 UTC".
  function fmtTime(ts) {
    return window.SkylineTime.format(ts);
  }

  function fmtNum(v) {
    if (v === null || v === undefined) return "-";
    return Number(v.toPrecision(6)).toString();
  }

  function getJSON(url, poll) {
    var headers = { Accept: "application/json" };
    if (poll) headers["X-Skyline-Poll"] = "1";
    return fetch(url, { credentials: "same-origin", headers: headers }).then(function (r) {
      if (r.status === 401) { window.location.reload(); throw new Error("logged out"); }
      if (!r.ok) {  // say what went wrong: the API's own reason when it gave one
        return r.json().catch(function () { return {}; }).then(function (body) {
          throw new Error("HTTP " + r.status + (body.error ? ": " + body.error : ""));
        });
      }
      return r.json();
    });
  }

  function message(el, text) {
    el.textContent = "";
    var p = document.createElement("p");
    p.className = "chart-msg";
    p.textContent = text;
    el.appendChild(p);
  }

  // A marker on the anomalous point: a vertical line and a ring.
  function markPlugin(markTs) {
    return {
      hooks: {
        draw: [function (u) {
          if (!markTs) return;
          var x = Math.round(u.valToPos(markTs, "x", true));
          var c = u.ctx;
          c.save();
          c.strokeStyle = "#c0392b";
          c.lineWidth = 2 * devicePixelRatio;
          c.setLineDash([6, 4]);
          c.beginPath();
          c.moveTo(x, u.bbox.top);
          c.lineTo(x, u.bbox.top + u.bbox.height);
          c.stroke();
          var idx = u.valToIdx(markTs);
          var v = u.data[1][idx];
          if (v !== null && v !== undefined) {
            var y = Math.round(u.valToPos(v, "y", true));
            c.setLineDash([]);
            c.beginPath();
            c.arc(x, y, 7 * devicePixelRatio, 0, 2 * Math.PI);
            c.stroke();
          }
          c.restore();
        }],
      },
    };
  }

  function drawChart(el) {
    var markTs = el.dataset.mark ? Number(el.dataset.mark) : null;
    var height = Number(el.dataset.height || 300);
    message(el, "loading…");
    getJSON(el.dataset.url).then(function (body) {
      if (!body.data.length) { message(el, "No datapoints stored for this metric in this window: the store keeps the last day of what horizon or flux received (and older data as rollups)."); return; }
      var xs = body.data.map(function (p) { return p[0]; });
      var ys = body.data.map(function (p) { return p[1]; });
      el.textContent = "";
      var opts = {
        width: Math.max(300, el.clientWidth - 16),
        height: height,
        title: el.dataset.title || body.metric,
        cursor: { drag: { x: true, y: false } },
        scales: { x: { time: true } },
        series: [{}, { label: "value", stroke: "#2457c5", width: 1.5, points: { show: false } }],
        plugins: [markPlugin(markTs)],
      };
      if (el.classList.contains("small")) {  // a sparkline: no title, legend or cursor
        delete opts.title;
        opts.legend = { show: false };
        opts.cursor = { show: false };
        opts.axes = [{ show: false }, { size: 40 }];
      }
      var plot = new uPlot(window.SkylineTime.applyTo(opts), [xs, ys], el);
      el.dataset.drawn = "1";
      window.addEventListener("resize", function () {
        plot.setSize({ width: Math.max(300, el.clientWidth - 16), height: height });
      });
    }).catch(function (err) { message(el, "Could not load the series (" + err.message + "); reload the page, or see the webapp log."); });
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function link(td, href, text) {
    td.textContent = "";
    var a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    td.appendChild(a);
    return a;
  }

  function badge(td, text, cls) {
    var s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    td.appendChild(s);
  }

  function anomalyRow(r, base) {
    var tr = document.createElement("tr");
    tr.dataset.id = r.id;
    tr.className = "new";
    link(cell(tr, ""), base + r.id, "").appendChild(window.SkylineTime.element(r.timestamp));
    link(cell(tr, "", "metric"), base + r.id, r.metric);
    cell(tr, fmtNum(r.value), "num");
    cell(tr, r.source);
    cell(tr, r.triggered_algorithms.length + "/" + r.algorithms_run.length);
    badge(cell(tr, ""), verdictText(r), verdictClass(r));
    var l = cell(tr, "");
    if (r.label) badge(l, r.label.replace("_", " "), "label l-" + r.label);
    return tr;
  }

  // "alerted (slack failed)" when some channel failed to deliver
  function verdictText(r) {
    return r.verdict_text || r.verdict;
  }

  function verdictClass(r) {
    var partial = r.failed_channels && r.failed_channels.length ? " v-partial" : "";
    return "verdict v-" + r.verdict + partial;
  }

  function flash(tr) {
    tr.classList.remove("new");
    void tr.offsetWidth;  // restart the animation
    tr.classList.add("new");
  }

  // A shown row whose verdict or label changed (mirage cleared it, an alert went out,
  // someone labelled it) is updated in place.
  function updateRow(tr, r) {
    var v = tr.children[5], l = tr.children[6];
    var shown = v.querySelector(".verdict");
    if (!shown || shown.textContent !== verdictText(r)) {
      v.textContent = "";
      badge(v, verdictText(r), verdictClass(r));
      flash(tr);
    }
    var label = r.label ? r.label.replace("_", " ") : "";
    var shownLabel = l.querySelector(".label");
    if ((shownLabel ? shownLabel.textContent : "") !== label) {
      l.textContent = "";
      if (r.label) badge(l, label, "label l-" + r.label);
      flash(tr);
    }
  }

  function liveNow(table) {
    var tbody = table.querySelector("tbody");
    var state = document.getElementById("live-state");
    var stamp = document.getElementById("live-time");
    var empty = document.getElementById("now-empty");
    var base = table.dataset.anomalyBase;
    function poll() {
      var lastId = Number(table.dataset.lastId || 0);
      getJSON(table.dataset.poll, true).then(function (body) {
        var rows = body.data.slice().sort(function (a, b) { return a.id - b.id; });
        rows.forEach(function (r) {
          var tr = tbody.querySelector('tr[data-id="' + r.id + '"]');
          if (tr) {
            updateRow(tr, r);
          } else if (r.id > lastId) {
            tbody.insertBefore(anomalyRow(r, base), tbody.firstChild);
            lastId = r.id;
          }
        });
        table.dataset.lastId = lastId;
        if (tbody.children.length && empty) empty.hidden = true;
        state.className = "";
        stamp.textContent = "checked " + fmtTime(Date.now() / 1000);
      }).catch(function (err) {
        state.className = "stale";
        stamp.textContent = "not updated (" + err.message + "); retrying every 5 s";
      });
    }
    setInterval(poll, 5000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".chart[data-url]").forEach(drawChart);
    var now = document.getElementById("now");
    if (now) liveNow(now);
  });
})();
