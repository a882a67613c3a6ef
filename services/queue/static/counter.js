// The counter console. The officer logs in through identity (same origin); the token lives
// in sessionStorage, so closing the tab logs out. Every action is a call on the queue API.
(function () {
  var config = JSON.parse(document.getElementById("counter-config").textContent);
  var TOKEN = "motcua.counter.token", USER = "motcua.counter.user";
  var api = "/queue/api/v1";
  var $ = function (sel) { return document.querySelector(sel); };
  var current = null;
  // This officer holds the counter (the queue refuses calls and actions otherwise): taken on
  // sign-in, renewed every minute so that the counter is not taken as left.
  var holding = false;
  var counterPath = "/wards/" + config.ward_id + "/counters/" + config.counter_id;

  function show(loggedIn) { $("[data-login]").hidden = loggedIn; $("[data-console]").hidden = !loggedIn; }
  function say(text) { $("[data-message]").textContent = text || ""; }
  function logout(message) {
    sessionStorage.removeItem(TOKEN); sessionStorage.removeItem(USER);
    show(false); $("[data-login-message]").textContent = message || "";
  }

  async function call(method, path, body) {
    var headers = {"Authorization": "Bearer " + sessionStorage.getItem(TOKEN)};
    if (body) headers["Content-Type"] = "application/json";
    var r = await fetch(api + path, {method: method, headers: headers, body: body ? JSON.stringify(body) : undefined});
    if (r.status === 401) { logout("Phiên đăng nhập đã hết hạn, xin đăng nhập lại."); throw new Error("unauthorized"); }
    var data = r.status === 204 ? null : await r.json();
    return {status: r.status, ok: r.ok, data: data};
  }

  function render() {
    var service = current && config.services.filter(function (s) { return s.code === current.service_code; })[0];
    $("[data-current-number]").textContent = current ? current.number : "—";
    $("[data-current-service]").textContent = current ? (service ? service.name : current.service_code) : "Chưa gọi số nào";
    $("[data-current-priority]").hidden = !(current && current.priority === "priority");
    document.querySelectorAll("[data-action]").forEach(function (b) { b.disabled = !current || !holding; });
    $("[data-call-next]").disabled = !holding;
  }

  async function claim() {
    var r = await call("POST", counterPath + "/session");
    var was = holding;
    holding = r.ok;
    if (!holding) say((r.data && r.data.detail) || "Chưa nhận được quầy, xin thử lại.");
    else if (!was) say("");
    render();
  }

  async function loadCurrent() {
    var r = await call("GET", "/wards/" + config.ward_id + "/counters/" + config.counter_id + "/current");
    current = r.status === 200 ? r.data : null;
    render();
  }

  async function refreshWaiting() {
    try {
      var r = await fetch(api + "/wards/" + config.ward_id + "/board");
      if (!r.ok) return;
      var board = await r.json();
      document.querySelectorAll("[data-waiting] li").forEach(function (li) {
        li.querySelector("strong").textContent = board.waiting[li.dataset.serviceCode] || 0;
      });
    } catch (err) { /* the next refresh will tell */ }
  }

  var calling = false;
  $("[data-call-next]").addEventListener("click", async function () {
    if (calling) return;  // a double click calls once (the queue also answers the same ticket)
    calling = true;
    say("Đang gọi…");
    try {
      var r = await call("POST", counterPath + "/call-next");
      if (r.status === 204) { say("Không còn ai chờ quầy này."); return; }
      if (r.status === 409 && r.data && r.data.code === "call_in_progress") { say(""); return; }
      if (!r.ok) { say((r.data && r.data.detail) || "Chưa gọi được, xin thử lại."); return; }
      current = r.data; render();
      say(current.already_called ? "Số " + current.number + " đang được mời tại quầy; hãy hoàn thành, ghi vắng mặt hoặc chuyển quầy trước khi gọi số tiếp theo."
                                 : "Đã mời số " + current.number + ".");
      refreshWaiting();
    } finally { calling = false; }
  });

  var DONE = {serve: "Đã hoàn thành số ", skip: "Đã ghi vắng mặt số ", recall: "Đã gọi lại số ", transfer: "Đã chuyển số "};
  document.querySelectorAll("[data-action]").forEach(function (button) {
    button.addEventListener("click", async function () {
      if (!current) return;
      var action = button.dataset.action, body = {action: action};
      if (action === "transfer") body.counter_id = $("[data-transfer-to]").value;
      var r = await call("POST", "/tickets/" + current.ticket_id + "/actions", body);
      if (!r.ok) { say((r.data && r.data.detail) || "Chưa thực hiện được, xin thử lại."); await loadCurrent(); return; }
      say(DONE[action] + current.number + ".");
      if (action !== "recall") current = null;
      render(); refreshWaiting();
    });
  });

  $("[data-login-form]").addEventListener("submit", async function (e) {
    e.preventDefault();
    var form = e.target, message = $("[data-login-message]");
    message.textContent = "Đang đăng nhập…";
    try {
      var r = await fetch("/identity/api/v1/sessions", {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({username: form.username.value.trim(), password: form.password.value})});
      var s = await r.json();
      if (!r.ok) { message.textContent = s.detail || "Sai tên đăng nhập hoặc mật khẩu."; return; }
      if (s.must_change_password) { message.textContent = "Cần đổi mật khẩu tạm thời trước khi làm việc."; return; }
      var staff = s.role === "admin" || ((s.role === "officer" || s.role === "ward_admin") && s.ward_id === config.ward_id);
      if (!staff) { message.textContent = "Tài khoản này không phải cán bộ của phường."; return; }
      sessionStorage.setItem(TOKEN, s.access_token); sessionStorage.setItem(USER, form.username.value.trim());
      form.reset(); message.textContent = "";
      start();
    } catch (err) { message.textContent = "Không kết nối được máy chủ, xin thử lại."; }
  });
  // Signing out ends the officer's session at the counter: another officer may take it.
  $("[data-logout]").addEventListener("click", async function () {
    try { if (holding) await call("DELETE", counterPath + "/session"); } catch (err) { /* signed out anyway */ }
    holding = false; logout("");
  });

  var waitingTimer = null, holdTimer = null;
  async function start() {
    show(true);
    $("[data-officer]").textContent = sessionStorage.getItem(USER) || "";
    try { await claim(); await loadCurrent(); } catch (err) { return; }
    refreshWaiting();
    if (!waitingTimer) waitingTimer = setInterval(refreshWaiting, 4000);
    if (!holdTimer) holdTimer = setInterval(function () { claim().catch(function () {}); }, 60000);
  }
  if (sessionStorage.getItem(TOKEN)) start(); else show(false);
})();
