// Device heartbeat: a kiosk, a display board or a counter console says "still here" every
// minute (POST /queue/api/v1/wards/{ward}/devices/heartbeat), with what its page can know:
// whether the browser thinks it is online, how many heartbeats it could not send, when this
// browser session started (uptime), the app version and, on a kiosk, what became of the last
// slip sent to the printer. The monitoring centre sees a device that goes quiet.
//
// A kiosk's pages change with every ticket, so the last heartbeat's time is kept in
// localStorage and a new page only sends when one is due. A board (a public page) names
// itself with a random id kept in localStorage; a paired kiosk is known by its device
// cookie; a counter console sends only while an officer is signed in (their token).
(function () {
  var el = document.getElementById("heartbeat-config");
  if (!el || !window.fetch || !window.JSON) return;
  var config = JSON.parse(el.textContent);
  var interval = (config.interval_seconds || 60) * 1000;
  var scope = config.kind + "." + config.ward_id + (config.counter_id ? "." + config.counter_id : "");
  var LAST = "motcua.heartbeat.last." + scope, MISSED = "motcua.heartbeat.missed." + scope;
  var ID = "motcua.device." + config.kind + "." + config.ward_id, SINCE = "motcua.heartbeat.since";
  var PRINTER = "motcua.kiosk.printer";   // written by the kiosk's ticket page
  var stopped = false, timer = null, minimal = false;

  function store(name) { try { var s = window[name]; s.getItem("x"); return s; } catch (e) { return null; } }
  var local = store("localStorage"), session = store("sessionStorage");
  function read(s, key) { try { return s ? s.getItem(key) : null; } catch (e) { return null; } }
  function write(s, key, value) { try { if (s) s.setItem(key, value); } catch (e) { /* full or private */ } }

  function randomId() {
    var bytes = new Uint8Array(16), c = window.crypto || window.msCrypto;
    if (c && c.getRandomValues) c.getRandomValues(bytes);
    else for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function deviceId() {
    var id = read(local, ID);
    if (!id || !/^[A-Za-z0-9_-]{16,64}$/.test(id)) { id = randomId(); write(local, ID, id); }
    return id;
  }
  // Uptime: since this browser session's first page (a kiosk reloads its page all day).
  var since = read(session, SINCE);
  if (!since || isNaN(Date.parse(since))) { since = new Date().toISOString(); write(session, SINCE, since); }

  function printerState() {
    try {
      var p = JSON.parse(read(local, PRINTER) || "null");
      return p && (p.state === "ok" || p.state === "error") ? p.state : "unknown";
    } catch (e) { return "unknown"; }
  }

  function beat() {
    if (stopped) return;
    var headers = {"Content-Type": "application/json"};
    if (config.kind === "counter") {
      var token = read(session, "motcua.counter.token");   // counter.js keeps it there
      if (!token) return;                                   // nobody signed in: nothing to report
      headers.Authorization = "Bearer " + token;
    }
    var missed = parseInt(read(local, MISSED) || "0", 10) || 0;
    // minimal: the server refused the extras once (a device clock far off, say): the bare
    // heartbeat still tells the centre the device is there.
    var body = minimal ? {kind: config.kind} : {kind: config.kind, page_loaded_at: since,
      app_version: config.app_version, online: navigator.onLine !== false, missed_beats: missed};
    if (config.counter_id) body.counter_id = config.counter_id;
    if (config.kind !== "counter") body.device_id = deviceId();  // a paired kiosk is known by its cookie
    if (config.kind === "kiosk" && !minimal) body.printer = printerState();
    write(local, LAST, String(Date.now()));
    fetch(config.url, {method: "POST", headers: headers, body: JSON.stringify(body), credentials: "same-origin"})
      .then(function (r) {
        if (r.ok) { write(local, MISSED, "0"); return; }
        if (r.status === 422 && !minimal) { minimal = true; return; }
        // Not this device's to report (unpaired kiosk, unknown ward or counter): stop asking.
        if (r.status === 403 || r.status === 404 || r.status === 409 || r.status === 422 ||
            (r.status === 401 && config.kind !== "counter")) { stopped = true; return; }
        if (r.status !== 401 && r.status !== 429) write(local, MISSED, String(missed + 1));
      })
      .catch(function () { write(local, MISSED, String(missed + 1)); });
  }

  function start() {
    var last = parseInt(read(local, LAST) || "0", 10) || 0;
    var wait = Math.max(0, Math.min(interval, last + interval - Date.now()));
    setTimeout(function () { beat(); timer = setInterval(beat, interval); }, wait);
  }
  // Back online: say so at once rather than at the next minute.
  window.addEventListener("online", function () { if (timer) beat(); });
  start();
})();
