// Live updates: notes added in another window of the same account appear
// here without a reload, over server-sent events (/notes/live). Served by
// the web server from /static/, like the stylesheet.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const list = document.querySelector("ul.notes");
  if (!list || !window.EventSource) return;
  const source = new EventSource("/notes/live?after=" + encodeURIComponent(list.dataset.after || "0"));
  source.addEventListener("note", (event) => {
    const item = document.createElement("li");
    item.textContent = event.data;
    list.appendChild(item);
    const empty = document.querySelector("p.empty");
    if (empty) empty.remove();
  });
});
