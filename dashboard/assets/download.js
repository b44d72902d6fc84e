// Downloads of reports and documents: the hub wants a bearer token, which a plain link cannot carry.

import { el } from "./dom.js";

/** Fetch `path` with the page's token and save it under the name the hub gives (or the path's last part). */
export async function download(path, token) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) {
    const error = new Error(`${response.status}`);
    error.status = response.status;
    throw error;
  }
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = disposition.match(/filename="?([^";]+)"?/)?.[1] || path.split("/").pop().replace(/^$/, "download") || "download";
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: name.includes(".") ? name : `${name}.html` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Point `[data-report]` links at the printable report page, which reads the token from the fragment. */
export function wireReportLinks(root, token) {
  for (const link of root.querySelectorAll("[data-report]")) {
    link.href = `${link.getAttribute("href").split("#")[0]}#token=${encodeURIComponent(token)}`;
  }
}

/** Wire every `[data-download]` button under `root`; `onError(status)` tells the user what went wrong. */
export function wireDownloads(root, token, onError) {
  root.addEventListener("click", async (e) => {
    const button = e.target.closest("[data-download]");
    if (!button) return;
    button.disabled = true;
    try {
      await download(button.dataset.download, token);
    } catch (error) {
      onError(error.status ?? 0);
    } finally {
      button.disabled = false;
    }
  });
}
