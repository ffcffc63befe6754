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
