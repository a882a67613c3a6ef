// The display board: live from the queue's Server-Sent Events stream, with a spoken
// call in Vietnamese where the browser can speak. Falls back to polling the board's JSON
// when the stream is refused (too many boards on one server) and tries the stream again.
(function () {
  var config = JSON.parse(document.getElementById("board-config").textContent);
  var calls = document.querySelector("[data-calls]"), waiting = document.querySelector("[data-waiting]");
  var soundButton = document.querySelector("[data-sound]");
  var announced = null;  // keys of the calls already on the board; null until the first update

  function counterName(id) { return config.counters[id] || id; }
  function key(call) { return call.number + "|" + call.counter_id + "|" + call.called_at; }

  // "A007" is read "A 7": a voice reads a number better than "không không bảy".
  function spoken(call) {
    var m = /^([A-Z]+)0*(\d+)$/.exec(call.number);
    var number = m ? m[1] + " " + m[2] : call.number;
    return "Xin mời khách hàng có số " + number + " đến " + counterName(call.counter_id);
  }
  var voice = null;
  function pickVoice() {
    if (!("speechSynthesis" in window)) return;
    voice = speechSynthesis.getVoices().filter(function (v) { return /^vi/i.test(v.lang); })[0] || null;
  }
  function speak(text) {
    if (!("speechSynthesis" in window)) return;
    var u = new SpeechSynthesisUtterance(text);
    u.lang = "vi-VN"; u.rate = 0.9;
    if (voice) u.voice = voice;
    speechSynthesis.speak(u);
  }
  if ("speechSynthesis" in window) {
    pickVoice();
    speechSynthesis.onvoiceschanged = pickVoice;
    // Browsers may only speak after a first touch; a TV started in kiosk mode usually may.
    soundButton.hidden = false;
    soundButton.textContent = "Bật loa gọi số";
    soundButton.addEventListener("click", function () { speak("Đã bật loa gọi số"); soundButton.hidden = true; });
  }

  function render(board) {
    var serving = board.serving.slice().sort(function (a, b) { return a.called_at < b.called_at ? 1 : -1; });
    var fresh = announced === null ? [] : serving.filter(function (c) { return !announced.has(key(c)); });
    calls.innerHTML = "";
    if (!serving.length) {
      var empty = document.createElement("li"); empty.className = "board-empty";
      empty.textContent = "Chưa có số nào được mời"; calls.append(empty);
    }
    serving.forEach(function (call, i) {
      var li = document.createElement("li");
      li.className = "board-call" + (i === 0 ? " latest" : "") + (fresh.indexOf(call) >= 0 ? " flash" : "");
      li.dataset.number = call.number;
      li.innerHTML = '<span class="call-number"></span><span class="call-arrow" aria-hidden="true">→</span><span class="call-counter"></span>';
      li.querySelector(".call-number").textContent = call.number;
      li.querySelector(".call-counter").textContent = counterName(call.counter_id);
      calls.append(li);
    });
    Object.keys(board.waiting).forEach(function (code) {
      var row = waiting.querySelector('[data-service-code="' + code + '"] .waiting-count');
      if (row) row.textContent = board.waiting[code];
    });
    fresh.slice().reverse().forEach(function (call) { speak(spoken(call)); });
    announced = new Set(serving.map(key));
  }

  var base = "/queue/api/v1/wards/" + encodeURIComponent(config.ward_id) + "/board";
  var pollTimer = null;
  function poll() {
    fetch(base).then(function (r) { return r.ok ? r.json() : null; }).then(function (b) { if (b) render(b); })
      .catch(function () {});
  }
  function connect() {
    if (!("EventSource" in window)) { setInterval(poll, 3000); return; }
    var source = new EventSource(base + "/stream");
    source.addEventListener("board", function (e) {
      if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
      render(JSON.parse(e.data));
    });
    source.onerror = function () {
      // The stream ends on purpose now and then and EventSource reconnects by itself; a
      // refused stream (503) is CLOSED: poll meanwhile and try again in a while.
      if (source.readyState === EventSource.CLOSED) {
        if (!pollTimer) { poll(); pollTimer = setInterval(poll, 3000); }
        setTimeout(connect, 15000);
      }
    };
  }
  // The stream's first event is the board as it stands: shown, not announced.
  connect();
})();
