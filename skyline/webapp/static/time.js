// One time format for the whole UI (the same as skyline/webapp/formats.py): a point in
// time is "2026-12-06 17:39:07 UTC", its age ("5m ago") on hover; charts use UTC on
// their axis and in their legend.  app.js and the pages use window.SkylineTime.
"use strict";

(function () {
  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function format(ts) {
    return new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function age(ts) {
    var s = Math.max(0, Math.floor(Date.now() / 1000 - ts));
    if (s < 120) return s + "s ago";
    if (s < 7200) return Math.floor(s / 60) + "m ago";
    if (s < 172800) return Math.floor(s / 3600) + "h ago";
    return Math.floor(s / 86400) + "d ago";
  }

  // A <time> element: the time as text, its age as the title (as the server renders it).
  function element(ts) {
    var t = document.createElement("time");
    t.dateTime = new Date(ts * 1000).toISOString().slice(0, 19) + "Z";
    t.textContent = format(ts);
    t.title = age(ts);
    return t;
  }

  // An axis tick in UTC: "17:30", or "12-06 17:30" when the axis spans days.
  function tick(ts, span) {
    var d = new Date(ts * 1000);
    var hm = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    if (span < 3600) hm += ":" + pad(d.getUTCSeconds());
    return span > 86400 ? pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " + hm : hm;
  }

  // uPlot options: UTC ticks and legend in the one format, the zone named on the axis.
  function applyTo(opts) {
    opts.tzDate = function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); };
    opts.series[0] = Object.assign({}, opts.series[0], {
      label: "time (UTC)",
      value: function (u, v) { return v === null || v === undefined ? "-" : format(v); },
    });
    opts.axes = opts.axes || [{}, {}];
    opts.axes[0] = Object.assign({
      label: "UTC",
      labelSize: 16,
      values: function (u, splits) {
        var span = u.scales.x.max - u.scales.x.min;
        return splits.map(function (v) { return tick(v, span); });
      },
    }, opts.axes[0]);
    return opts;
  }

  // A hovered time's title is its age now, not when the page was drawn.
  function refresh(ev) {
    var t = ev.target.closest && ev.target.closest("time[datetime]");
    if (!t) return;
    var ts = Date.parse(t.dateTime) / 1000;
    if (isNaN(ts)) return;
    t.title = t.textContent.indexOf(" ago") >= 0 ? format(ts) : age(ts);
  }
  document.addEventListener("mouseover", refresh);

  window.SkylineTime = { format: format, age: age, element: element, applyTo: applyTo };
})();
