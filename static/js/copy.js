/* The API keys page: the Copy button beside a new key copies it to the clipboard, and says
 * so in the status line under it. A key is shown once, so the copy must not be fiddly: the
 * clipboard API where the page may use it, else the key is selected for Ctrl+C. */
(function () {
  "use strict";

  function say(button, text) {
    var card = button.closest("section") || document;
    var status = card.querySelector("[data-copy-status]");
    if (status) {
      status.textContent = text;
    }
  }

  function selectValue(input) {
    input.focus();
    input.select();
    input.setSelectionRange(0, input.value.length);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) {
      return;
    }
    var input = document.getElementById(button.getAttribute("data-copy"));
    if (!input) {
      return;
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(
        function () {
          button.textContent = "Copied";
          say(button, "Copied to the clipboard. Keep it safe: it is not shown again.");
        },
        function () {
          selectValue(input);
          say(button, "The browser refused the clipboard: the key is selected, press Ctrl+C (⌘C).");
        }
      );
      return;
    }
    selectValue(input);
    say(button, "The key is selected: press Ctrl+C (⌘C) to copy it.");
  });
})();
