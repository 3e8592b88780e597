// kanal desk pages: small enhancements only; every form works without this file.
(function () {
  "use strict";
  // Phone: show the number as it will be stored (+62…) while the officer types.
  var phone = document.getElementById("phone");
  var hint = document.getElementById("phone-hint");
  function e164(value) {
    var d = value.replace(/[\s\-().]/g, "");
    if (!/^\+?\d+$/.test(d)) return "";
    if (d.charAt(0) === "+") return d;
    if (d.indexOf("62") === 0) return "+" + d;
    if (d.charAt(0) === "0") return "+62" + d.slice(1);
    return "";
  }
  if (phone && hint) {
    var show = function () {
      var v = e164(phone.value);
      hint.textContent = v && v.length >= 10 ? "Disimpan sebagai " + v : "";
    };
    phone.addEventListener("input", show);
    phone.addEventListener("blur", function () { var v = e164(phone.value); if (v.length >= 11) phone.value = v; show(); });
    show();
  }
  // Kelurahan: a search box over /desk/areas that sets the plain <select> below it.
  var select = document.querySelector("select[data-search]");
  if (select && window.fetch) {
    var box = document.createElement("input");
    box.type = "search";
    box.id = "kelurahan-search";
    box.placeholder = "Cari nama kelurahan atau kecamatan";
    box.setAttribute("aria-label", "Cari kelurahan");
    box.autocomplete = "off";
    var list = document.createElement("ul");
    list.className = "suggest";
    list.hidden = true;
    select.parentNode.insertBefore(box, select);
    select.parentNode.insertBefore(list, select);
    var timer = null;
    box.addEventListener("input", function () {
      clearTimeout(timer);
      var q = box.value.trim();
      if (q.length < 2) { list.hidden = true; return; }
      timer = setTimeout(function () {
        fetch(select.getAttribute("data-search") + "?q=" + encodeURIComponent(q), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : { items: [] }; })
          .then(function (data) {
            list.textContent = "";
            data.items.forEach(function (item) {
              var li = document.createElement("li");
              var b = document.createElement("button");
              b.type = "button";
              b.textContent = item.name + " — Kec. " + item.kecamatan + ", " + item.kota;
              b.addEventListener("click", function () {
                select.value = item.code;
                box.value = item.name;
                list.hidden = true;
              });
              li.appendChild(b);
              list.appendChild(li);
            });
            list.hidden = data.items.length === 0;
          })
          .catch(function () { list.hidden = true; });
      }, 200);
    });
  }
  // Receipt: a print button (without script, the browser's own print works).
  var print = document.querySelector("[data-print]");
  if (print) {
    print.hidden = false;
    print.addEventListener("click", function () { window.print(); });
  }
})();
