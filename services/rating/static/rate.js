// The rating screen: the counter's name from the queue's public API, and while idle a
// look every two seconds for a ticket just served here (then the faces are shown).
(function () {
  var config = JSON.parse(document.getElementById("screen-config").textContent);
  fetch("/queue/api/v1/wards/" + encodeURIComponent(config.ward_id) + "/counters")
    .then(function (r) { return r.ok ? r.json() : []; })
    .then(function (counters) {
      var mine = counters.filter(function (c) { return c.counter_id === config.counter_id; })[0];
      if (mine) document.querySelector("[data-counter-name]").textContent = mine.name;
    }).catch(function () {});
  var ask = document.querySelector("[data-ticket-id]");
  var shown = ask ? ask.dataset.ticketId : null;
  if (document.querySelector("[data-done]")) return;  // the thank-you page goes back by itself
  if (document.querySelector("[data-unpaired]")) return;  // only a paired screen may ask what was served
  var latest = "/rating/api/v1/wards/" + encodeURIComponent(config.ward_id) + "/counters/" +
    encodeURIComponent(config.counter_id) + "/latest";
  setInterval(function () {
    // The device cookie that pairing left (HttpOnly, path /rating/) is the screen's credential.
    fetch(latest, {credentials: "same-origin"}).then(function (r) { return r.status === 200 ? r.json() : null; }).then(function (ticket) {
      var now = ticket ? ticket.ticket_id : null;
      if (now !== shown) window.location.reload();
    }).catch(function () {});
  }, 2000);
})();
