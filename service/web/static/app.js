// Small progressive enhancements; every page works without them.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.cite");
  if (!button) return;
  const item = document.getElementById(button.dataset.target);
  if (!item) return;
  document.querySelectorAll(".evidence-item.shown").forEach((el) => el.classList.remove("shown"));
  item.classList.add("shown");
  item.scrollIntoView({ block: "nearest" });
  item.focus();
});

// A job page refreshes itself until the job is finished.
const job = document.querySelector("[data-job-poll]");
if (job) {
  setTimeout(() => window.location.reload(), 1500);
}
