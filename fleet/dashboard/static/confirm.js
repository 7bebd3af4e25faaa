// Forms that change something for good ask first. The question comes from the form's
// data-confirm attribute, HTML-escaped by the template and read back as plain text: a name
// with a quote in it (O'Brien Court, Tom's laptop) can neither break the question nor run.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) event.preventDefault();
});
