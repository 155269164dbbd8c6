// Refresh the dashboard's board in place: fetch its figures and the re-rendered board from the
// admin session's JSON endpoint, never reloading the page. A failed refresh says so and keeps
// the last figures on screen.
(function () {
  "use strict";
  var board = document.getElementById("board");
  var stamp = document.getElementById("refreshed-at");
  var problem = document.getElementById("refresh-problem");
  if (!board) { return; }
  var every = Math.max(1, parseInt(board.dataset.every, 10) || 15) * 1000;

  function fail(message) {
    problem.textContent = message;
    problem.hidden = false;
  }

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
        board.innerHTML = data.html;
        stamp.dateTime = data.stats.generated_at;
        stamp.textContent = data.stats.generated_at.slice(11, 19) + " UTC";
        problem.hidden = true;
        document.body.dataset.refreshes = String((parseInt(document.body.dataset.refreshes, 10) || 0) + 1);
      })
      .catch(function (error) { fail("Could not refresh (" + error.message + "); showing older figures."); });
  }

  setInterval(refresh, every);
})();
