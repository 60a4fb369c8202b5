// Live status for the images page and a compose's page, by server-sent events.
//
// The server relays the backend's history changes (/images/updates). On
// "ready" (every connect and reconnect) the page reads its rows again, so a
// change made while it was not listening is not missed; after that each
// "compose" event replaces that compose's row (or refreshes the compose's
// page). Nothing polls. Without JavaScript the pages work, just not live.
(function () {
  "use strict";
  var region = document.querySelector("[data-live-rows], [data-live-compose]");
  if (!region || !window.EventSource) { return; }
  var status = document.getElementById("live-status");
  var composeId = region.getAttribute("data-live-compose");

  function say(text) { if (status) { status.textContent = text; } }

  function refresh() {
    return fetch(region.getAttribute("data-live-refresh"), { credentials: "same-origin" }).then(function (response) {
      if (response.status === 401) { signedOut(); return; }
      if (!response.ok) { return; }
      return response.text().then(function (html) { region.innerHTML = html; });
    });
  }

  function signedOut() {
    source.close();
    say("Your session ended: sign in again to see live status.");
  }

  function changed(event) {
    var data = JSON.parse(event.data);
    if (composeId) {
      if (data.id === composeId) { refresh(); }
      return;
    }
    var row = region.querySelector('tr[data-compose-id="' + data.id + '"]');
    if (!row) { return; }
    var holder = document.createElement("tbody");
    holder.innerHTML = data.row;
    var fresh = holder.querySelector("tr");
    if (fresh && row.getAttribute("data-status") !== fresh.getAttribute("data-status")) {
      say((row.querySelector("th") || row).textContent.trim() + " is now " + data.status_label + ".");
    }
    if (fresh) { row.replaceWith(fresh); }
  }

  function removed(event) {
    var data = JSON.parse(event.data);
    var row = region.querySelector('tr[data-compose-id="' + data.id + '"]');
    if (row) { row.remove(); }
  }

  var connects = 0;
  var source = new EventSource(region.getAttribute("data-live-source"));
  source.addEventListener("ready", function () {
    connects += 1;
    document.body.setAttribute("data-live-connects", String(connects));
    refresh().then(function () {
      document.body.setAttribute("data-live", "on");
      if (connects === 1) { say("Status updates live."); }
      else if (status && status.textContent.indexOf("Reconnecting") === 0) { say("Live status resumed."); }
    });
  });
  source.addEventListener("reset", refresh);
  source.addEventListener("compose", changed);
  source.addEventListener("removed", removed);
  source.addEventListener("signed-out", signedOut);
  source.onerror = function () {
    document.body.setAttribute("data-live", "off");
    if (source.readyState === EventSource.CLOSED) {
      say("Live status stopped: reload the page to resume.");
    } else {
      say("Reconnecting for live status...");
    }
  };
})();
