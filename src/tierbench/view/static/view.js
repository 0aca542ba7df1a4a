// tierbench view: the pause countdown, and live updates from the server's journal tail (SSE).
(function () {
  "use strict";

  function formatLeft(ms) {
    if (ms <= 0) return "now";
    var s = Math.floor(ms / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    s = s % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + s + "s";
  }

  function tickCountdowns() {
    var nodes = document.querySelectorAll(".countdown[data-until]");
    for (var i = 0; i < nodes.length; i++) {
      var until = Date.parse(nodes[i].getAttribute("data-until"));
      nodes[i].textContent = isNaN(until) ? "?" : formatLeft(until - Date.now());
    }
  }

  function refreshLive() {
    if (!window.htmx || !document.getElementById("live")) return;
    window.htmx.ajax("GET", window.location.href, {target: "#live", select: "#live", swap: "outerHTML"});
  }

  function listen() {
    var url = document.body.getAttribute("data-events");
    if (!url || !window.EventSource) return;
    var dot = document.getElementById("live-dot");
    var source = new EventSource(url);
    source.addEventListener("change", function (event) {
      var data = {};
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (data.version !== document.body.getAttribute("data-version")) {
        document.body.setAttribute("data-version", data.version);
        refreshLive();
      }
    });
    source.addEventListener("open", function () { if (dot) dot.className = "badge s-running"; });
    source.addEventListener("error", function () { if (dot) dot.className = "badge muted"; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tickCountdowns();
    setInterval(tickCountdowns, 1000);
    listen();
  });
  document.addEventListener("htmx:afterSettle", tickCountdowns);
})();
