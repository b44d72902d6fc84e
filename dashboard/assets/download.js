// Downloads of reports and documents: the hub wants a bearer token, which a plain link cannot carry.

import { el } from "./dom.js";

/** Fetch `path` from the page's node (conn: hub.js's HubConnection) and save it under the name the hub gives
 * (or the path's last part). */
export async function download(path, conn) {
  const response = await conn.fetch(path);
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

/** Point `[data-report]` links at the printable report page (which reads the token from the fragment) on the
 * node the page is on, again whenever it connects (to another node after a failover). */
export function wireReportLinks(root, conn) {
  const links = [...root.querySelectorAll("[data-report]")].map((link) => [link, link.getAttribute("href")]);
  const point = () => {
    for (const [link, path] of links) link.href = `${conn.href(path)}#token=${encodeURIComponent(conn.token)}`;
  };
  conn.addEventListener("auth", point);
  point();
}

/** Wire every `[data-download]` button under `root`; `onError(status)` tells the user what went wrong. */
export function wireDownloads(root, conn, onError) {
  root.addEventListener("click", async (e) => {
    const button = e.target.closest("[data-download]");
    if (!button) return;
    button.disabled = true;
    try {
      await download(button.dataset.download, conn);
    } catch (error) {
      onError(error.status ?? 0);
    } finally {
      button.disabled = false;
    }
  });
}
