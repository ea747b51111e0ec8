/* Copy buttons: <button data-copy="element-id"> copies that element's text to the
 * clipboard and says so in the [data-copy-status] beside it (the webhook secret). */
(function () {
  "use strict";

  function say(button, text) {
    var status = button.parentElement.querySelector("[data-copy-status]");
    if (status) {
      status.textContent = text;
    }
  }

  function fallback(source) {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    return document.execCommand && document.execCommand("copy");
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
    var text = source.textContent.trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { say(button, "Copied."); },
        function () { say(button, fallback(source) ? "Copied." : "Select it and copy it."); }
      );
    } else {
      say(button, fallback(source) ? "Copied." : "Select it and copy it.");
    }
  });
})();
