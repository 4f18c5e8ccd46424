/* Accessibility repairs of the HTML that Sphinx writes, applied as each page loads.
 *
 * The bibliography of every chapter is a <div role="list"> whose entries carry role="doc-biblioentry",
 * a role that DPUB-ARIA 1.1 deprecates and that needs a doc-bibliography parent: screen readers then
 * announce a list with no items. Entries of a list are list items (what DPUB-ARIA recommends).
 */
(function () {
  "use strict";
  function repair() {
    document.querySelectorAll('[role="list"] > [role="doc-biblioentry"]').forEach(function (entry) {
      entry.setAttribute("role", "listitem");
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", repair);
  } else {
    repair();
  }
})();
