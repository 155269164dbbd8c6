// The public callback page's challenge (callback/domain/public_page.py): find a counter whose
// SHA-256 with the signed token starts with the token's number of zero bits, while the person
// types, and send it with the form. Without Web Crypto the server takes a short wait instead.
(function () {
  "use strict";
  var BATCH = 256;

  function bitsOf(token) {
    var body = token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
    while (body.length % 4) { body += "="; }
    return JSON.parse(atob(body)).b;
  }

  function zeroBits(bytes) {
    var count = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) { count += 8; continue; }
      var b = bytes[i];
      while (!(b & 0x80)) { count += 1; b <<= 1; }
      return count;
    }
    return count;
  }

  function solve(token, bits) {
    var encoder = new TextEncoder();
    function round(start) {
      var work = [];
      for (var i = 0; i < BATCH; i++) {
        work.push(crypto.subtle.digest("SHA-256", encoder.encode(token + ":" + (start + i))));
      }
      return Promise.all(work).then(function (digests) {
        for (var j = 0; j < digests.length; j++) {
          if (zeroBits(new Uint8Array(digests[j])) >= bits) { return String(start + j); }
        }
        return round(start + BATCH);
      });
    }
    return round(0);
  }

  var forms = document.querySelectorAll("form[data-challenge]");
  Array.prototype.forEach.call(forms, function (form) {
    if (!window.crypto || !window.crypto.subtle || !window.TextEncoder) { return; }
    var answer = form.elements.answer;
    var status = form.querySelector("[data-status]");
    var token = form.elements.challenge.value;
    var done = solve(token, bitsOf(token)).then(function (found) { answer.value = found; });
    form.addEventListener("submit", function (event) {
      if (answer.value) { return; }
      event.preventDefault();
      var button = event.submitter || null;
      if (status) { status.textContent = "One moment…"; }
      done.then(function () { form.requestSubmit(button); });
    });
  });
})();
