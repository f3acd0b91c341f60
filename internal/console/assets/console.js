// pollhook console: optional enhancements. Every page works without
// this script; it only shows times in the browser's zone, and reloads a
// page on request (a checkbox in the top bar), or while a poll runs.
(function () {
  "use strict";

  // Times: the exact local time as a tooltip of each relative one.
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) {
      el.title = d.toLocaleString();
    }
  });

  // Reloading: never while the reader is busy with the page.
  function busy() {
    var a = document.activeElement;
    if (a && ((a.tagName === "INPUT" && a.type !== "checkbox") || a.tagName === "TEXTAREA")) {
      return true;
    }
    if (document.querySelector("details[open]")) {
      return true;
    }
    var sel = window.getSelection && window.getSelection();
    return !!(sel && String(sel).length > 0);
  }
  function reloadIn(seconds) {
    window.setTimeout(function () {
      if (busy() || document.hidden) {
        reloadIn(seconds);
        return;
      }
      window.location.reload();
    }, seconds * 1000);
  }

  var key = "pollhook.autorefresh";
  var who = document.querySelector(".who");
  var on = false;
  try { on = window.localStorage.getItem(key) === "1"; } catch (e) { /* storage off */ }
  if (who) {
    var label = document.createElement("label");
    var box = document.createElement("input");
    box.type = "checkbox";
    box.checked = on;
    box.addEventListener("change", function () {
      try { window.localStorage.setItem(key, box.checked ? "1" : "0"); } catch (e) { /* storage off */ }
      if (box.checked) {
        reloadIn(10);
      }
    });
    label.appendChild(box);
    label.appendChild(document.createTextNode("Auto-refresh"));
    who.insertBefore(label, who.firstChild);
  }
  var pending = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (pending > 0) {
    reloadIn(pending);
  } else if (on) {
    reloadIn(10);
  }
})();
