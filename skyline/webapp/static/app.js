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

  // Markers: the page's own anomaly (focus), the metric's other anomalies and its alert
  // deliveries: a vertical line each (a ring on an anomaly's value); hovering near one
  // shows what it is, clicking an anomaly opens it.
  function markList(el, body) {
    var out = [];
    if (el.dataset.mark) {
      out.push({ ts: Number(el.dataset.mark), value: el.dataset.markValue === "" ? null : Number(el.dataset.markValue),
                 kind: "focus", text: "this anomaly at " + fmtTime(Number(el.dataset.mark)) });
    }
    (body.anomalies || []).forEach(function (a) {
      if (String(a.timestamp) === el.dataset.mark) return;
      out.push({ ts: a.timestamp, value: a.value, kind: "anomaly", href: "/anomaly/" + a.id,
                 text: "anomaly " + a.id + " at " + fmtTime(a.timestamp) + ": " + fmtNum(a.value) +
                       " (" + a.source + ", " + a.verdict.replace("_", " ") + ")" });
    });
    (body.alerts || []).forEach(function (a) {
      out.push({ ts: a.timestamp, value: null, kind: "alert",
                 href: a.anomaly_id ? "/anomaly/" + a.anomaly_id : null,
                 text: "alert " + a.status + " on " + a.channel + " at " + fmtTime(a.timestamp) });
    });
    return out;
  }

  var MARK_STYLE = { focus: ["#c0392b", [6, 4]], anomaly: ["#e67e22", [3, 3]], alert: ["#8e44ad", []] };

  function markPlugin(marks) {
    return {
      hooks: {
        draw: [function (u) {
          var c = u.ctx;
          c.save();
          marks.forEach(function (m) {
            if (m.ts < u.scales.x.min || m.ts > u.scales.x.max) return;
            var x = Math.round(u.valToPos(m.ts, "x", true));
            var style = MARK_STYLE[m.kind];
            c.strokeStyle = style[0];
            c.fillStyle = style[0];
            c.lineWidth = (m.kind === "focus" ? 2 : 1.5) * devicePixelRatio;
            c.setLineDash(style[1]);
            c.beginPath();
            c.moveTo(x, u.bbox.top);
            c.lineTo(x, u.bbox.top + u.bbox.height);
            c.stroke();
            c.setLineDash([]);
            if (m.kind === "alert") {  // a small triangle at the top
              var s = 6 * devicePixelRatio;
              c.beginPath();
              c.moveTo(x - s, u.bbox.top);
              c.lineTo(x + s, u.bbox.top);
              c.lineTo(x, u.bbox.top + s * 1.5);
              c.fill();
            } else if (m.value !== null && m.value !== undefined) {
              var y = Math.round(u.valToPos(m.value, "y", true));
              c.beginPath();
              c.arc(x, y, (m.kind === "focus" ? 7 : 5) * devicePixelRatio, 0, 2 * Math.PI);
              c.stroke();
            }
          });
          c.restore();
        }],
      },
    };
  }

  // The mark nearest the cursor, within 6 px, else null.
  function markAt(u, marks, left) {
    var best = null, dist = 7;
    marks.forEach(function (m) {
      var d = Math.abs(u.valToPos(m.ts, "x") - left);
      if (d < dist) { best = m; dist = d; }
    });
    return best;
  }

  function hoverMarks(u, el, marks) {
    var tip = document.createElement("div");
    tip.className = "chart-tip";
    tip.hidden = true;
    u.over.appendChild(tip);
    var current = null;
    u.over.addEventListener("mousemove", function (e) {
      var left = e.clientX - u.over.getBoundingClientRect().left;
      current = markAt(u, marks, left);
      tip.hidden = !current;
      u.over.style.cursor = current && current.href ? "pointer" : "";
      if (!current) return;
      tip.textContent = current.text;
      tip.style.left = Math.min(left + 8, u.over.clientWidth - 260) + "px";
    });
    u.over.addEventListener("mouseleave", function () { tip.hidden = true; current = null; });
    var downX = null;  // a drag (a zoom) is not a click on a marker
    u.over.addEventListener("mousedown", function (e) { downX = e.clientX; });
    u.over.addEventListener("click", function (e) {
      var dragged = downX !== null && Math.abs(e.clientX - downX) > 3;
      if (current && current.href && !dragged) window.location.href = current.href;
    });
  }

  // The y range: a flat or single-point series gets some room around its value.
  function yRange(u, min, max) {
    if (min === null || max === null) return [0, 1];
    if (min === max) {
      var pad = Math.abs(min) * 0.1 || 1;
      return [min - pad, max + pad];
    }
    return uPlot.rangeNum(min, max, 0.1, true);
  }

  function seriesUrl(el, range) {
    var url = new URL(el.dataset.url, window.location.href);
    if (!el.dataset.static) {
      url.searchParams.set("from", range.from);
      url.searchParams.set("until", range.until);
    }
    return url.toString();
  }

  // Put the range into the page URL (a link reproduces the view) and the picker.
  function showRange(el, range) {
    var url = new URL(window.location.href);
    url.searchParams.set("from", range.from);
    url.searchParams.set("until", range.until);
    window.history.replaceState(null, "", url.toString());
    var picker = document.querySelector('.range-picker[data-chart="' + el.id + '"]');
    if (!picker) return;
    picker.querySelector("input[name=from]").value = fmtTime(range.from);
    picker.querySelector("input[name=until]").value = fmtTime(range.until);
    picker.querySelector(".range-reset").hidden = false;
    picker.querySelectorAll(".preset.active").forEach(function (a) { a.classList.remove("active"); });
  }

  function columns(data) {
    return [data.map(function (p) { return p[0]; }), data.map(function (p) { return p[1]; })];
  }

  function drawChart(el) {
    var small = el.classList.contains("small");
    var height = Number(el.dataset.height || 300);
    var range = el.dataset.from ? { from: Number(el.dataset.from), until: Number(el.dataset.until) } : null;
    message(el, "loading…");
    getJSON(range ? seriesUrl(el, range) : el.dataset.url).then(function (body) {
      if (!body.data.length) { message(el, "No datapoints stored for this metric in this window: the store keeps the last day of what horizon or flux received (and older data as rollups)."); return; }
      var data = columns(body.data);
      var marks = small ? [] : markList(el, body);
      if (!range) {  // a sparkline: the data's own span, with room around a single point
        var lo = data[0][0], hi = data[0][data[0].length - 1];
        range = lo === hi ? { from: lo - 300, until: hi + 300 } : { from: lo, until: hi };
      }
      el.textContent = "";
      var opts = {
        width: Math.max(300, el.clientWidth - 16),
        height: height,
        title: el.dataset.title || body.metric,
        cursor: { drag: { x: true, y: false, setScale: false } },
        scales: { x: { time: true, range: function () { return [range.from, range.until]; } },
                  y: { range: yRange } },
        series: [{}, { label: "value", stroke: "#2457c5", width: 1.5,
                       points: { show: data[0].length < 60, size: 7, fill: "#2457c5" } }],
        plugins: [markPlugin(marks)],
      };
      if (small) {  // a sparkline: no title, legend or cursor
        delete opts.title;
        opts.legend = { show: false };
        opts.cursor = { show: false };
        opts.axes = [{ show: false }, { size: 40 }];
      } else {
        opts.hooks = { setSelect: [function (u) {
          if (u.select.width < 3) return;
          var from = Math.floor(u.posToVal(u.select.left, "x"));
          var until = Math.ceil(u.posToVal(u.select.left + u.select.width, "x"));
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          if (until - from < 2) return;
          range = { from: from, until: until };
          showRange(el, range);
          zoom(el, u, range);
        }] };
      }
      var plot = new uPlot(window.SkylineTime.applyTo(opts), data, el);
      el.plot = plot;  // for the browser tests
      el.dataset.marks = marks.length;
      el.dataset.points = data[0].length;
      if (!small) hoverMarks(plot, el, marks);
      el.dataset.drawn = "1";
      window.addEventListener("resize", function () {
        plot.setSize({ width: Math.max(300, el.clientWidth - 16), height: height });
      });
    }).catch(function (err) { message(el, "Could not load the series (" + err.message + "); reload the page, or see the webapp log."); });
  }

  // Zoomed: a stored series is fetched again for the range (finer than the thinned
  // wide view); a static one (a profile's window) is only rescaled.
  function zoom(el, plot, range) {
    el.dataset.drawn = "0";
    if (el.dataset.static) {
      plot.setData(plot.data);
      el.dataset.drawn = "1";
      return;
    }
    getJSON(seriesUrl(el, range)).then(function (body) {
      plot.setData(body.data.length ? columns(body.data) : [[], []]);
      el.dataset.points = body.data.length;
      el.dataset.drawn = "1";
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
