// The clock in the page header: local time of the office, every few seconds.
(function () {
  var el = document.querySelector("[data-clock]");
  if (!el) return;
  var zone = el.dataset.timezone || undefined;
  var time = new Intl.DateTimeFormat("vi-VN", {timeZone: zone, hour: "2-digit", minute: "2-digit", hour12: false});
  var date = new Intl.DateTimeFormat("vi-VN", {timeZone: zone, day: "2-digit", month: "2-digit", year: "numeric"});
  function tick() {
    var now = new Date();
    el.innerHTML = '<span class="clock-time">' + time.format(now) + '</span><span class="clock-date">' +
      date.format(now) + "</span>";
  }
  tick();
  setInterval(tick, 5000);
})();
