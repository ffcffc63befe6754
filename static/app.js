// keyward: small progressive enhancements. Everything works without this file.
(function () {
  "use strict";

  // Copy buttons: <button data-copy="#input-id">. Falls back to selecting
  // the text so the user can copy it by hand.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.value !== undefined ? source.value : source.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.setAttribute("aria-live", "polite");
      setTimeout(function () { button.textContent = label; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { source.select(); });
    } else {
      source.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* selected for manual copy */ }
    }
  });

  // Controls that only make sense with JavaScript are hidden in the markup.
  document.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });

  // The modal dialog: htmx loads a fragment into #dialog-body, we open it.
  function dialog() { return document.getElementById("dialog"); }

  function closeDialog() {
    var d = dialog();
    if (!d || !d.open) return;
    var reload = d.querySelector("[data-reload-on-close]");
    d.close();
    // Never keep a shown secret in the page: clear the dialog, and reload
    // the list so it shows the new or changed key.
    document.getElementById("dialog-body").innerHTML = "";
    if (reload) window.location.reload();
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    var d = dialog();
    if (!d || event.detail.target.id !== "dialog-body") return;
    d.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
    if (!d.open) d.showModal();
    var first = d.querySelector("[aria-invalid=true], input:not([type=hidden]):not([readonly]), select, textarea, button");
    if (first) first.focus();
  });

  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close-dialog]");
    if (!closer || !closer.closest("dialog")) return;
    event.preventDefault();
    // Let a copy on the same button happen first.
    setTimeout(closeDialog, closer.hasAttribute("data-copy") ? 150 : 0);
  });

  document.addEventListener("close", function (event) {
    if (event.target.id === "dialog") {
      var reload = event.target.querySelector("[data-reload-on-close]");
      document.getElementById("dialog-body").innerHTML = "";
      if (reload) window.location.reload();
    }
  }, true);

  // Close an open row menu when another opens or on Escape.
  document.addEventListener("toggle", function (event) {
    var menu = event.target;
    if (!menu.matches || !menu.matches("details.menu") || !menu.open) return;
    document.querySelectorAll("details.menu[open]").forEach(function (m) { if (m !== menu) m.open = false; });
  }, true);
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelector("details.menu[open]");
    if (open) { open.open = false; open.querySelector("summary").focus(); }
  });

  // After htmx swaps in a message or a form with errors, move focus to it so
  // keyboard and screen-reader users land on what changed.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target) return;
    var focusable = target.querySelector("[aria-invalid=true], .alert[role=alert]");
    if (focusable) {
      if (!focusable.hasAttribute("tabindex") && focusable.tagName !== "INPUT") {
        focusable.setAttribute("tabindex", "-1");
      }
      focusable.focus();
    }
  });
})();
