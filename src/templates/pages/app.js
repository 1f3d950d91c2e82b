// The pages' only script, served as /assets/app.js. It only displays: it ticks the escalation
// countdowns (`.countdown[data-due-ms]`) from the server's clock (`data-now-ms` on <body>), and
// reloads a page that asks for it (`data-refresh-s`) unless someone is typing in it. It never
// submits a form or sends anything else. Without it the server-rendered text stays and `/`
// reloads through a <noscript> meta refresh.
(function () {
  "use strict";
  var body = document.body;
  var serverNow = Number(body.getAttribute("data-now-ms"));
  // The browser's clock may be off from the server's (and tests run the server on a manual
  // clock): count from the server's time at page load.
  var offset = serverNow > 0 ? serverNow - Date.now() : 0;

  // The one spelling of a span of time, as crate::text::duration writes it.
  function duration(ms) {
    if (!(ms > 0)) return "0s";
    if (ms < 1000) return Math.floor(ms) + "ms";
    var secs = Math.floor(ms / 1000);
    var days = Math.floor(secs / 86400);
    var hours = Math.floor(secs / 3600) % 24;
    var mins = Math.floor(secs / 60) % 60;
    var s = secs % 60;
    if (days > 0) return days + "d " + hours + "h";
    if (hours > 0) return hours + "h " + mins + "m";
    if (mins > 0) return mins + "m " + s + "s";
    return s + "s";
  }

  // A deadline as a clock, as crate::text::clock writes it: M:SS, or H:MM:SS.
  function clock(ms) {
    var secs = Math.floor(Math.max(ms, 0) / 1000);
    var hours = Math.floor(secs / 3600);
    var mins = Math.floor(secs / 60) % 60;
    var s = secs % 60;
    var ss = (s < 10 ? "0" : "") + s;
    if (hours > 0) return hours + ":" + (mins < 10 ? "0" : "") + mins + ":" + ss;
    return mins + ":" + ss;
  }

  function tick() {
    var now = Date.now() + offset;
    var spans = document.querySelectorAll(".countdown[data-due-ms]");
    for (var i = 0; i < spans.length; i++) {
      var el = spans[i];
      var due = Number(el.getAttribute("data-due-ms"));
      if (!isFinite(due)) continue;
      var text;
      if (el.getAttribute("data-kind") === "fired") {
        text = "escalated " + duration(now - due) + " ago";
      } else if (due > now) {
        text = "escalates in " + clock(due - now);
      } else {
        text = "escalation due " + duration(now - due) + " ago";
      }
      if (el.textContent !== text) el.textContent = text;
    }
  }
  setInterval(tick, 1000);

  var refresh = Number(body.getAttribute("data-refresh-s"));
  if (refresh > 0) {
    var loaded = Date.now();
    setInterval(function () {
      var a = document.activeElement;
      var typing = a && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName);
      if (!typing && Date.now() - loaded >= refresh * 1000) location.reload();
    }, 1000);
  }
})();
