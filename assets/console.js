// Ctrl+Enter (Cmd+Enter) in a SQL editor runs it; confirm buttons ask first. No inline
// script anywhere: the Content-Security-Policy allows only files served by the gateway.
document.addEventListener("keydown", function (e) {
  if ((e.ctrlKey || e.metaKey) && e.key === "Enter" && e.target.matches("textarea[data-run]")) {
    e.preventDefault();
    e.target.form.requestSubmit();
  }
});
document.addEventListener("submit", function (e) {
  var q = e.target.getAttribute("data-confirm");
  if (q && !window.confirm(q)) { e.preventDefault(); }
}, true);
