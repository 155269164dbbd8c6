// Refresh an agent's page in place: fetch its content and the re-rendered board from the
// page's JSON twin, never reloading (the presence form keeps what the agent is typing). A
// failed refresh says so and keeps the last content on screen.
(function () {
  "use strict";
  var board = document.getElementById("agent-board");
  var stamp = document.getElementById("refreshed-at");
  var problem = document.getElementById("refresh-problem");
  if (!board) { return; }
  var every = Math.max(1, parseInt(board.dataset.every, 10) || 15) * 1000;

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
        stamp.dateTime = data.generated_at;
        stamp.textContent = data.clock;
        problem.hidden = true;
        document.body.dataset.refreshes = String((parseInt(document.body.dataset.refreshes, 10) || 0) + 1);
      })
      .catch(function (error) {
        problem.textContent = "Could not refresh (" + error.message + "); showing older content.";
        problem.hidden = false;
      });
  }

  setInterval(refresh, every);
})();
