/* Copy buttons: <button data-copy="element-id"> copies that element's text (an input's
 * value: a new API key; or an element's text: a webhook secret) to the clipboard and says
 * so in the [data-copy-status] beside it (the button's own box first, else its section).
 * What is shown once must not be fiddly to copy: the clipboard API where the page may use
 * it, else the text is selected for Ctrl+C. */
(function () {
  "use strict";

  function say(button, text) {
    var status = button.parentElement.querySelector("[data-copy-status]") ||
      (button.closest("section") || document).querySelector("[data-copy-status]");
    if (status) {
      status.textContent = text;
    }
  }

  function isField(source) {
    return source.tagName === "INPUT" || source.tagName === "TEXTAREA";
  }

  function select(source) {
    if (isField(source)) {
      source.focus();
      source.select();
      source.setSelectionRange(0, source.value.length);
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function selected(button, source) {
    select(source);
    say(button, "It is selected: press Ctrl+C (⌘C) to copy it.");
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) {
      return;
    }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) {
      return;
    }
    var text = (isField(source) ? source.value : source.textContent).trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () {
          button.textContent = "Copied";
          say(button, button.getAttribute("data-copied") || "Copied to the clipboard.");
        },
        function () { selected(button, source); }
      );
      return;
    }
    selected(button, source);
  });
})();
