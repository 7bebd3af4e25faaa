// On a narrow screen a wide table or code block scrolls in its own box (style.css). A keyboard
// scrolls a box only while it has focus, so the box joins the Tab order (tabindex=0) while it
// overflows and leaves it when it fits again; a table's caption or label names it.
(function () {
  "use strict";
  if (!window.ResizeObserver) return;

  function update(box) {
    const overflows = box.scrollWidth > box.clientWidth;
    if (overflows && !box.hasAttribute("tabindex")) box.setAttribute("tabindex", "0");
    if (!overflows && box.getAttribute("tabindex") === "0") box.removeAttribute("tabindex");
  }

  const observer = new ResizeObserver((entries) => entries.forEach((e) => update(e.target)));
  for (const box of document.querySelectorAll("main table, main pre")) observer.observe(box);
})();
