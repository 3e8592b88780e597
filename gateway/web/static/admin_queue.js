/* kanal /admin queue: keyboard for the cards. Every action is also a plain form or link;
   this only moves the focus and presses them. j/k next/previous, a accept & submit,
   s submit, x pick, r reject the picked ones, o or Enter open. */
(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll("ol.queue > li.item"));
  var legend = document.getElementById("keys");
  var hint = document.getElementById("keyhint");
  if (legend) legend.hidden = false;
  if (!cards.length) return;
  var KEY = "kanal-queue-at";
  var at = 0;
  var busy = false;
  try {
    var saved = window.sessionStorage.getItem(KEY);
    if (saved !== null) {
      at = Math.min(parseInt(saved, 10) || 0, cards.length - 1);
      window.sessionStorage.removeItem(KEY);
    }
  } catch (e) { /* storage refused: start at the top */ }

  function focusCard(i) {
    cards[at].classList.remove("current");
    cards[at].removeAttribute("aria-current");
    at = Math.max(0, Math.min(i, cards.length - 1));
    var card = cards[at];
    card.classList.add("current");
    card.setAttribute("aria-current", "true");
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  }

  function tell(text) {
    if (!hint) return;
    hint.textContent = text;
    hint.hidden = !text;
  }

  function remember() {
    try { window.sessionStorage.setItem(KEY, String(at)); } catch (e) { /* fine */ }
  }

  function press(key) {
    var card = cards[at];
    var buttons = card.querySelectorAll("button[data-keys]");
    for (var i = 0; i < buttons.length; i++) {
      if ((" " + buttons[i].getAttribute("data-keys") + " ").indexOf(" " + key + " ") >= 0) {
        busy = true;
        remember();
        buttons[i].form.requestSubmit(buttons[i]);
        return;
      }
    }
    if (key === "s" && card.querySelector("button[data-keys='a']")) {
      tell("Lokasi belum dipilih: tekan a untuk menerima saran kanal dan mengirim, atau o untuk membuka.");
    } else {
      tell("Laporan ini belum dapat dikirim dari antrean: tekan o untuk membuka dan melengkapinya.");
    }
  }

  function pick(card) {
    var box = card.querySelector("input[type=checkbox][form=bulk]");
    if (box) box.checked = !box.checked;
    return box;
  }

  cards.forEach(function (card, i) {
    card.tabIndex = -1;
    card.addEventListener("focusin", function () { if (at !== i) focusCard(i); });
  });
  focusCard(at);

  document.addEventListener("keydown", function (event) {
    if (busy || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    var typing = target.matches("select, textarea, input:not([type=checkbox])");
    if (typing) return;
    var onControl = target.matches("a, button");
    switch (event.key) {
      case "j": focusCard(at + 1); break;
      case "k": focusCard(at - 1); break;
      case "a": tell(""); press("a"); break;
      case "s": tell(""); press("s"); break;
      case "x": pick(cards[at]); break;
      case "r": {
        var reason = document.getElementById("bulk-reason");
        if (!reason) return;
        if (!document.querySelector("input[type=checkbox][form=bulk]:checked")) pick(cards[at]);
        remember();
        reason.focus();
        break;
      }
      case "o":
      case "Enter": {
        if (event.key === "Enter" && onControl) return; // Enter on a button or link is its own
        var open = cards[at].querySelector("a.open");
        if (open) window.location.href = open.href;
        break;
      }
      default: return;
    }
    event.preventDefault();
  });
})();
