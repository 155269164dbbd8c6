// Refresh a page's board in place (the dashboard, an agent's page): fetch its content and the
// re-rendered board from the page's JSON twin (the board's data-source, every data-every
// seconds), never reloading, so a form beside the board keeps what is typed in it. A failed
// refresh says so and keeps the last content on screen.
(function () {
  "use strict";
  var board = document.querySelector("[data-source][data-every]");
  var stamp = document.getElementById("refreshed-at");
  var problem = document.getElementById("refresh-problem");
  if (!board) { return; }
  var every = Math.max(1, parseInt(board.dataset.every, 10) || 15) * 1000;
  var shown = board.dataset.noun || "content";

  function refresh() {
    fetch(board.dataset.source, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (!response.ok || type.indexOf("application/json") !== 0) {
          throw new Error(response.redirected ? "signed out: reload the page to log in again"
                                              : "the server answered " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        // An agent's page gives its time and its clock in the center's zone; the dashboard
        // gives its figures' UTC time.
        var at = data.generated_at || data.stats.generated_at;
        board.innerHTML = data.html;
        stamp.dateTime = at;
        stamp.textContent = data.clock || at.slice(11, 19) + " UTC";
        problem.hidden = true;
        document.body.dataset.refreshes = String((parseInt(document.body.dataset.refreshes, 10) || 0) + 1);
      })
      .catch(function (error) {
        problem.textContent = "Could not refresh (" + error.message + "); showing older " + shown + ".";
        problem.hidden = false;
      });
  }

  setInterval(refresh, every);
})();
