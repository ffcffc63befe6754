// keyward: small progressive enhancements. Everything works without this file.
(function () {
  "use strict";

  var CHANGED = "keyward:changed-row";

  // Copy buttons: <button data-copy="#input-id">. Falls back to selecting
  // the text so the user can copy it by hand.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.value !== undefined ? source.value : source.textContent;
    var done = function () {
      var holder = button.closest("[data-unsaved-guard]");
      if (holder) holder.setAttribute("data-copied", "");
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

  // Controls that only make sense with JavaScript are hidden in the markup;
  // show them on the page and in whatever htmx swaps in later.
  document.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
  document.addEventListener("htmx:load", function (event) {
    var elt = event.detail.elt;
    if (!elt || !elt.querySelectorAll) return;
    if (elt.hasAttribute("data-js-only")) elt.hidden = false;
    elt.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
  });

  // The modal dialog: htmx loads a fragment into #dialog-body, we open it.
  function dialog() { return document.getElementById("dialog"); }

  // What opened the dialog (a row's menu button, or the button itself), to
  // give focus back to when it closes (WAI-ARIA dialog pattern).
  var opener = null;
  // The row the dialog acts on, to highlight after the list reloads.
  var actingRow = null;

  function closeMenus() {
    document.querySelectorAll("details.menu[open]").forEach(function (m) { m.open = false; });
  }

  function rememberChanged(rowId) {
    if (!rowId) return;
    try { sessionStorage.setItem(CHANGED, rowId); } catch (e) { /* private mode: no highlight */ }
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt || elt.getAttribute("hx-target") !== "#dialog-body" || elt.closest("dialog")) return;
    var menu = elt.closest("details.menu");
    opener = menu ? menu.querySelector("summary") : (elt.tagName === "FORM" ? elt.querySelector("button") : elt);
    var row = elt.closest("tr[id^='row-']");
    actingRow = row ? row.id : null;
  });

  // A change made in the dialog sends the browser back to the list: mark
  // its row so the list shows which one changed.
  document.addEventListener("htmx:beforeOnLoad", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.getResponseHeader("HX-Redirect") && event.detail.elt.closest("dialog")) {
      rememberChanged(actingRow);
    }
  });

  // Plain row actions (Disable, Enable, …) reload the page: mark their row.
  document.addEventListener("submit", function (event) {
    var row = event.target.closest("tr[id^='row-']");
    if (row && !event.target.closest("#bulk-form")) rememberChanged(row.id);
  });

  function closeDialog() {
    var d = dialog();
    if (d && d.open) d.close();
  }

  // Closing "Save your key" before copying asks first: the key is shown once.
  function requestClose() {
    var d = dialog();
    if (!d || !d.open) return;
    var guard = d.querySelector("[data-unsaved-guard]");
    if (guard && !guard.hasAttribute("data-copied")) {
      var question = guard.querySelector(".unsaved-question");
      if (question && question.hidden) {
        question.hidden = false;
        question.querySelector(".keep-key").focus();
        return;
      }
      if (question) return;
    }
    closeDialog();
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    var d = dialog();
    if (!d || event.detail.target.id !== "dialog-body") return;
    d.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
    // Choosing a menu item closes the menu (WAI-ARIA menu button pattern).
    closeMenus();
    if (!d.open) d.showModal();
    var first = d.querySelector("[aria-invalid=true]") ||
      d.querySelector("[data-initial-focus]") ||
      d.querySelector("input:not([type=hidden]):not([readonly]), select, textarea:not([readonly]), button:not([hidden]), a[href]");
    if (first) first.focus();
  });

  // Escape: the dialog's own cancel, which "Save your key" may hold back.
  document.addEventListener("cancel", function (event) {
    if (event.target.id !== "dialog") return;
    var guard = event.target.querySelector("[data-unsaved-guard]");
    if (guard && !guard.hasAttribute("data-copied")) {
      event.preventDefault();
      requestClose();
    }
  }, true);

  document.addEventListener("click", function (event) {
    var d = dialog();
    // A click on the backdrop lands on the dialog element itself.
    if (d && d.open && event.target === d) {
      var r = d.getBoundingClientRect();
      var outside = event.clientX < r.left || event.clientX > r.right || event.clientY < r.top || event.clientY > r.bottom;
      if (outside) { requestClose(); return; }
    }
    if (event.target.closest(".unsaved-question .keep-key")) {
      var q = event.target.closest(".unsaved-question");
      q.hidden = true;
      var key = document.getElementById("new-key");
      if (key) { key.focus(); key.select(); }
      return;
    }
    if (event.target.closest(".unsaved-question .discard-key")) {
      closeDialog();
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (!closer || !closer.closest("dialog")) return;
    event.preventDefault();
    // Let a copy on the same button happen first.
    setTimeout(closeDialog, closer.hasAttribute("data-copy") ? 150 : 0);
  });

  document.addEventListener("close", function (event) {
    if (event.target.id !== "dialog") return;
    var body = document.getElementById("dialog-body");
    var reload = event.target.querySelector("[data-reload-on-close]");
    var newRow = event.target.querySelector("[data-key-row]");
    // Never keep a shown secret in the page: clear the dialog, and reload
    // the list so it shows the new or changed key.
    body.innerHTML = "";
    if (reload) {
      rememberChanged(newRow ? newRow.getAttribute("data-key-row") : actingRow);
      window.location.reload();
      return;
    }
    closeMenus();
    if (opener && document.contains(opener)) opener.focus();
    opener = null;
    actingRow = null;
  }, true);

  // Close an open row menu when another opens or on Escape.
  document.addEventListener("toggle", function (event) {
    var menu = event.target;
    if (!menu.matches || !menu.matches("details.menu") || !menu.open) return;
    document.querySelectorAll("details.menu[open]").forEach(function (m) { if (m !== menu) m.open = false; });
  }, true);
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var d = dialog();
    if (d && d.open) return;
    var open = document.querySelector("details.menu[open]");
    if (open) { open.open = false; open.querySelector("summary").focus(); }
  });

  // After htmx swaps in a message or a form with errors, move focus to it so
  // keyboard and screen-reader users land on what changed.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target) return;
    var focusable = target.querySelector("[aria-invalid=true], .alert[role=alert]:not(.unsaved-question):not([hidden])");
    if (target.id === "dialog-body" && !target.querySelector("[aria-invalid=true]")) return;
    if (focusable) {
      if (!focusable.hasAttribute("tabindex") && focusable.tagName !== "INPUT") {
        focusable.setAttribute("tabindex", "-1");
      }
      focusable.focus();
    }
  });

  // The row created or changed just before this page loaded: highlight it
  // for a moment and bring it into view.
  var changed = null;
  try { changed = sessionStorage.getItem(CHANGED); sessionStorage.removeItem(CHANGED); } catch (e) { /* none */ }
  var row = changed && document.getElementById(changed);
  if (row) {
    row.classList.add("just-changed");
    row.scrollIntoView({ block: "nearest" });
  }

  // A status message rendered with the page ("… was revoked") is put into
  // its live region once the page is up, so screen readers announce it.
  var flash = document.getElementById("flash");
  var message = flash && flash.querySelector(".alert[role=status]");
  if (message) {
    flash.removeChild(message);
    setTimeout(function () { flash.appendChild(message); }, 300);
  }
})();
