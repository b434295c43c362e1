// A feedback answer form saves its draft a moment after typing stops, through the form's
// own POST route (action=save, asking for JSON), and says when. Without this script the
// "Save draft" button does the same. The pages' CSP allows only scripts from this origin.
const form = document.querySelector("form[data-autosave]");
if (form) {
  const status = document.getElementById(form.dataset.autosave);
  const WAIT_MS = 1500;
  let timer = null;
  let saving = Promise.resolve();

  const say = (text) => {
    if (status) status.textContent = text;
  };
  const two = (n) => String(n).padStart(2, "0");

  // Not form.action: the buttons named "action" shadow that property.
  const target = form.getAttribute("action");

  const save = async () => {
    const data = new URLSearchParams();
    for (const [name, value] of new FormData(form)) data.append(name, value);
    data.set("action", "save");
    try {
      const response = await fetch(target, {
        method: "POST",
        body: data,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        redirect: "manual",
      });
      const type = response.headers.get("content-type") || "";
      if (response.ok && type.includes("application/json")) {
        const now = new Date();
        say(`Draft saved at ${two(now.getHours())}:${two(now.getMinutes())}.`);
      } else if (type.includes("application/json")) {
        const problem = await response.json();
        say(`Not saved: ${problem.reason}`);
      } else {
        say("Not saved: reload the page to see why.");
      }
    } catch (error) {
      say("Not saved: the server could not be reached. Use “Save draft” when it is back.");
    }
  };

  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      saving = saving.then(save);
    }, WAIT_MS);
  });
}
