// The import page: while a big DMC export is read and applied (minutes for an area's file), say so and keep the
// button from sending it twice. The counts come with the page that answers.
document.querySelectorAll("form[data-busy]").forEach((form) => {
  form.addEventListener("submit", () => {
    const busy = document.getElementById(form.dataset.busy);
    if (busy) busy.hidden = false;
    form.querySelectorAll("button[type=submit]").forEach((b) => { b.disabled = true; });
  });
});
const report = document.getElementById("report-h");
if (report) report.focus();  // after an import, the keyboard and screen reader land on its report
