// The procedure catalog, from dossier's public API (same origin), searchable without
// diacritics: "khai sinh" and "khai sinh" find the same thing.
(function () {
  var list = document.querySelector("[data-procedures]"), status = document.querySelector("[data-status]");
  var search = document.querySelector("[data-search]"), dialog = document.querySelector("[data-detail]");
  var catalog = [];
  var LEVELS = {2: "Nộp tại quầy", 3: "Nộp trực tuyến", 4: "Trực tuyến toàn trình"};

  function plain(text) {
    return (text || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/đ/g, "d").replace(/Đ/g, "D").toLowerCase();
  }
  function money(vnd) { return vnd ? vnd.toLocaleString("vi-VN") + " đồng" : "Miễn phí"; }
  function fact(dl, label, value) {
    var dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = label; dd.textContent = value; dl.append(dt, dd);
  }
  function show(p) {
    dialog.querySelector("[data-detail-name]").textContent = p.name;
    var facts = dialog.querySelector("[data-detail-facts]"); facts.innerHTML = "";
    fact(facts, "Lĩnh vực", p.field || "");
    fact(facts, "Thời hạn giải quyết", (p.ward_days || p.statutory_days) + " ngày làm việc");
    fact(facts, "Lệ phí", money(p.fee));
    fact(facts, "Cách nộp", LEVELS[p.level] || "Tại quầy");
    var docs = dialog.querySelector("[data-detail-documents]"); docs.innerHTML = "";
    (p.required_documents || []).forEach(function (d) {
      var li = document.createElement("li"); li.textContent = typeof d === "string" ? d : (d.name || d.label || ""); docs.append(li);
    });
    if (!docs.children.length) { var li = document.createElement("li"); li.textContent = "Hỏi cán bộ tại quầy."; docs.append(li); }
    dialog.showModal();
  }
  function render() {
    var q = plain(search.value.trim());
    var found = catalog.filter(function (p) { return !q || plain(p.name + " " + (p.field || "")).indexOf(q) >= 0; });
    list.innerHTML = "";
    found.slice(0, 40).forEach(function (p) {
      var li = document.createElement("li"), b = document.createElement("button");
      b.type = "button"; b.className = "result-button";
      b.innerHTML = "<strong></strong><span></span>";
      b.querySelector("strong").textContent = p.name;
      b.querySelector("span").textContent = (p.field || "") + " · " + (p.ward_days || p.statutory_days) + " ngày làm việc";
      b.addEventListener("click", function () { show(p); });
      li.append(b); list.append(li);
    });
    status.textContent = found.length ? found.length + " thủ tục" : "Không tìm thấy thủ tục phù hợp. Xin thử từ khác.";
  }
  fetch("/dossier/api/v1/procedures").then(function (r) {
    if (!r.ok) throw new Error(r.status);
    return r.json();
  }).then(function (procedures) { catalog = procedures; render(); })
    .catch(function () { status.textContent = "Chưa tải được danh mục thủ tục. Xin hỏi cán bộ tại quầy hướng dẫn."; });
  search.addEventListener("input", render);
})();
