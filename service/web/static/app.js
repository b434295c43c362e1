// Small progressive enhancements; every page works without them.
// A citation chip opens its evidence right under the sentence (a copy of the item in the
// evidence panel, which is also marked), so reading it needs no scrolling; the same chip
// again, or Escape, closes it. Copies are made with cloneNode: no HTML is ever parsed here.
const closeInline = () => {
  document.querySelectorAll(".inline-evidence").forEach((el) => el.remove());
  document.querySelectorAll("button.cite[aria-expanded=true]").forEach((b) => {
    b.setAttribute("aria-expanded", "false");
  });
};

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.cite");
  if (!button) return;
  const item = document.getElementById(button.dataset.target);
  if (!item) return;
  const wasOpen = button.getAttribute("aria-expanded") === "true";
  closeInline();
  document.querySelectorAll(".evidence-item.shown").forEach((el) => el.classList.remove("shown"));
  item.classList.add("shown");
  if (wasOpen) return;
  const copy = item.cloneNode(true);
  copy.removeAttribute("id");
  copy.querySelectorAll("[id], input, label").forEach((el) => {
    if (el.matches("input, label")) el.closest("p")?.remove();
    else el.removeAttribute("id");
  });
  const aside = document.createElement("aside");
  aside.className = "inline-evidence";
  aside.setAttribute("aria-label", `Evidence ${button.textContent}`);
  aside.tabIndex = -1;
  aside.append(...copy.childNodes);
  const sentence = button.closest(".sentence") || button.parentElement;
  sentence.after(aside);
  button.setAttribute("aria-expanded", "true");
  aside.focus();
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const open = document.querySelector("button.cite[aria-expanded=true]");
  closeInline();
  if (open) open.focus();
});

// A job page refreshes itself until the job is finished.
const job = document.querySelector("[data-job-poll]");
if (job) {
  setTimeout(() => window.location.reload(), 1500);
}
