// The console's glue: the key in sessionStorage, the Authorization header on every htmx
// request, uploads, players and small conveniences. Pages are rendered by the server.
(() => {
  "use strict";

  const KEY = "wavforge.key";
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const key = () => sessionStorage.getItem(KEY);
  const players = new Map(); // waveform element -> WaveSurfer

  // --- talking to the server ------------------------------------------------------------------

  document.addEventListener("htmx:configRequest", (event) => {
    const current = key();
    if (current) event.detail.headers.Authorization = `Bearer ${current}`;
  });

  document.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    const message = envelopeMessage(xhr.responseText, xhr.statusText);
    const loading = event.detail.requestConfig && event.detail.requestConfig.verb === "get";
    if (xhr.status === 455) refreshService();
    if (xhr.status !== 401 && loading && event.detail.target === $("#content")) {
      showError(xhr.status, message); // a page that cannot open says so in its place
    } else {
      failed(xhr.status, message);
    }
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    const path = (event.detail.requestConfig && event.detail.requestConfig.path) || "";
    if (event.detail.successful && path.endsWith("/admin/maintenance")) refreshService();
  });

  document.addEventListener("htmx:sendError", () => {
    toast("The server could not be reached. Is it running?", "bad");
  });

  document.addEventListener("htmx:beforeSwap", (event) => {
    // Stop the players of the content being replaced before their elements go away.
    const target = event.detail.target;
    for (const [element, player] of players) {
      if (target.contains(element)) {
        if (player) player.destroy();
        players.delete(element);
      }
    }
  });

  function envelopeMessage(text, fallback) {
    try {
      const body = JSON.parse(text);
      if (body && typeof body.msg === "string") return body.msg;
    } catch (_) {
      /* not JSON: fall through */
    }
    return fallback || "Something went wrong.";
  }

  const ERROR_TITLES = {
    403: "Only an administrator's key opens this page.",
    404: "This was not found: it may have been deleted, or belong to another account.",
  };

  function showError(status, message) {
    const panel = document.createElement("section");
    panel.className = "panel error-panel";
    panel.setAttribute("role", "alert");
    const title = document.createElement("h1");
    title.textContent = ERROR_TITLES[status] || "This page could not be opened.";
    const detail = document.createElement("p");
    detail.className = "muted";
    detail.textContent = `The server said: ${message} (${status}).`;
    const back = document.createElement("p");
    const link = document.createElement("a");
    link.href = "/console";
    link.textContent = "Back to the overview";
    back.append(link);
    panel.append(title, detail, back);
    $("#content").replaceChildren(panel);
  }

  function failed(status, message) {
    if (status === 401) {
      signOut("That key was not accepted (it may have been revoked). Sign in again.");
    } else {
      toast(message, "bad");
    }
  }

  async function api(path, options = {}) {
    const headers = { ...(options.headers || {}), Authorization: `Bearer ${key()}` };
    const response = await fetch(path, { ...options, headers });
    let body;
    try {
      body = await response.json();
    } catch (_) {
      body = { code: response.status, msg: response.statusText };
    }
    if (!response.ok || body.code !== 200) {
      const error = new Error(body.msg || "The request failed.");
      error.status = response.status;
      throw error;
    }
    return body.data;
  }

  // --- signing in and out ---------------------------------------------------------------------

  async function start() {
    $("#sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const field = $("#api-key");
      signIn(field.value.trim());
      field.value = "";
    });
    $("#sign-out").addEventListener("click", () => signOut(""));
    if (key()) {
      await signIn(key());
    } else {
      showSignIn("");
    }
  }

  async function signIn(candidate) {
    if (!candidate) return;
    sessionStorage.setItem(KEY, candidate);
    let account;
    try {
      account = await api("/api/v1/account");
    } catch (error) {
      sessionStorage.removeItem(KEY);
      showSignIn(error.status === 401 ? "That key was not accepted." : error.message);
      return;
    }
    $("#sign-in").hidden = true;
    $("#nav").hidden = false;
    $("#who").hidden = false;
    $("#who-name").textContent = account.name;
    document.body.classList.toggle("is-admin", Boolean(account.admin));
    loadContent();
    refreshService();
  }

  function loadContent() {
    const main = $("#content");
    main.setAttribute("aria-busy", "true");
    htmx.ajax("GET", main.dataset.partial, { target: "#content", swap: "innerHTML" })
      .finally(() => main.setAttribute("aria-busy", "false"));
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    for (const player of players.values()) if (player) player.destroy();
    players.clear();
    $("#content").replaceChildren();
    $("#service").replaceChildren();
    $("#nav").hidden = true;
    $("#who").hidden = true;
    showSignIn(message);
  }

  function showSignIn(message) {
    $("#sign-in").hidden = false;
    $("#sign-in-error").textContent = message;
    $("#api-key").focus();
  }

  // --- messages -------------------------------------------------------------------------------

  const MAX_TOASTS = 3;

  function toast(message, tone = "good") {
    const item = document.createElement("div");
    item.className = `toast tone-${tone}`;
    const text = document.createElement("p");
    text.textContent = message;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", () => item.remove());
    item.append(text, close);
    const stack = $("#toasts");
    stack.append(item);
    while (stack.children.length > MAX_TOASTS) stack.firstElementChild.remove();
    setTimeout(() => item.remove(), tone === "bad" ? 8000 : 4000);
  }

  // --- maintenance mode -----------------------------------------------------------------------

  // What starts new work; a template may mark more with data-needs-service.
  const NEEDS_SERVICE =
    "[data-needs-service], [hx-post$='/convert'], [data-upload], [data-url-import] button";
  let paused = false;

  function refreshService() {
    htmx.ajax("GET", "/console/partials/service", { target: "#service", swap: "innerHTML" });
  }

  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target !== $("#service")) return;
    paused = Boolean($("#service [data-maintenance]"));
    document.body.classList.toggle("paused", paused);
    pauseControls(document);
  });

  function pauseControls(root) {
    for (const control of $$(NEEDS_SERVICE, root)) {
      if (paused && !control.disabled) {
        control.disabled = true;
        control.dataset.paused = "true";
      } else if (!paused && control.dataset.paused) {
        control.disabled = false;
        delete control.dataset.paused;
      }
    }
  }

  // --- what the server renders once, shown for this reader ------------------------------------

  const localTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  function localTimes(root) {
    // The server writes UTC; the reader sees their own zone, and the UTC on hover.
    for (const element of $$("time[datetime]", root)) {
      const date = new Date(element.dateTime);
      if (element.dataset.local || Number.isNaN(date.getTime())) continue;
      element.title = element.textContent.trim();
      element.textContent = localTime.format(date);
      element.dataset.local = "true";
    }
  }

  function labelCells(root) {
    // Each cell carries its column's name, which a phone shows beside it (a table turns
    // into cards there: see console.css).
    for (const table of $$("table", root)) {
      const heads = $$("thead th", table).map((th) =>
        $(".visually-hidden", th) ? "" : th.textContent.trim(),
      );
      for (const row of $$("tbody tr", table)) {
        Array.from(row.cells).forEach((cell, index) => {
          if (heads[index] && cell.colSpan === 1 && !cell.dataset.label) {
            cell.dataset.label = heads[index];
          }
        });
      }
    }
  }

  // --- uploads and imports --------------------------------------------------------------------

  function upload(files) {
    if (!files.length) return;
    const form = new FormData();
    for (const file of files) form.append("file", file, file.name);
    const bar = $("#upload-progress");
    const request = new XMLHttpRequest();
    request.open("POST", "/api/v1/music/import");
    request.setRequestHeader("Authorization", `Bearer ${key()}`);
    request.upload.addEventListener("progress", (event) => {
      if (bar && event.lengthComputable) {
        bar.hidden = false;
        bar.value = Math.round((event.loaded / event.total) * 100);
      }
    });
    request.addEventListener("load", () => {
      if (bar) bar.hidden = true;
      if (request.status === 200) {
        const count = files.length;
        toast(`Imported ${count} track${count === 1 ? "" : "s"}.`);
        loadContent();
      } else {
        failed(request.status, envelopeMessage(request.responseText, "The upload failed."));
      }
    });
    request.addEventListener("error", () => {
      if (bar) bar.hidden = true;
      toast("The upload did not reach the server.", "bad");
    });
    request.send(form);
  }

  async function importUrl(form) {
    const url = form.elements.url.value.trim();
    const button = $("button", form);
    button.disabled = true;
    try {
      await api("/api/v1/music/import", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ urls: [url] }),
      });
      toast("Imported the track.");
      loadContent();
    } catch (error) {
      failed(error.status, error.message);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("change", (event) => {
    if (event.target.matches("[data-upload]")) {
      upload(Array.from(event.target.files));
      event.target.value = "";
    } else if (event.target.matches("[data-select-all]")) {
      // Select (or clear) every row of this page of the list.
      const table = event.target.closest("table");
      for (const box of $$("tbody input[type=checkbox]", table)) box.checked = event.target.checked;
    }
  });

  // The selected WAVs as one ZIP: the server signs a link to the archive (checking every id),
  // and the browser downloads it as any file, streamed to disk, not through this page.
  async function downloadArchive(button) {
    const taskIds = $$("input[name=task]:checked").map((box) => box.value);
    if (!taskIds.length) {
      toast("Select the WAVs to download first.", "bad");
      return;
    }
    button.disabled = true;
    try {
      const made = await api("/api/v1/account/wav-tasks/archive-link", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ taskIds }),
      });
      const link = document.createElement("a");
      link.href = made.url;
      link.download = "";
      document.body.append(link);
      link.click();
      link.remove();
      toast(`Downloading ${made.count} WAV${made.count === 1 ? "" : "s"} as one ZIP.`);
    } catch (error) {
      failed(error.status, error.message);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-archive]");
    if (button) downloadArchive(button);
  });

  document.addEventListener("submit", (event) => {
    if (event.target.matches("[data-url-import]")) {
      event.preventDefault();
      importUrl(event.target);
    }
  });

  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (event) => {
      const zone = event.target.closest && event.target.closest("[data-dropzone]");
      if (!zone) return;
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  document.addEventListener("dragleave", (event) => {
    const zone = event.target.closest && event.target.closest("[data-dropzone]");
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
  });
  document.addEventListener("drop", (event) => {
    const zone = event.target.closest && event.target.closest("[data-dropzone]");
    if (!zone) return;
    event.preventDefault();
    zone.classList.remove("dragging");
    if (paused) {
      toast("Maintenance mode is on: imports are refused for now.", "warn");
      return;
    }
    upload(Array.from(event.dataTransfer.files));
  });

  // --- players --------------------------------------------------------------------------------

  function clock(seconds) {
    const minutes = Math.floor(seconds / 60);
    return `${minutes}:${(seconds - minutes * 60).toFixed(1).padStart(4, "0")}`;
  }

  // A player never downloads the file: it draws the waveform from the server's peaks (a few
  // thousand points, whatever the length) and streams the audio with Range requests through
  // the media element, so the page's memory does not grow with the track.
  function mountPlayers(root) {
    for (const box of $$("[data-player]", root)) {
      const waveform = $("[data-waveform]", box);
      if (!waveform || players.has(waveform)) continue;
      players.set(waveform, null); // mounting
      mountPlayer(box, waveform);
    }
  }

  async function mountPlayer(box, waveform) {
    const peaks = await peaksOf(box);
    if (!players.has(waveform)) return; // swapped away meanwhile
    const duration = Number(box.dataset.duration) || undefined;
    const styles = getComputedStyle(document.documentElement);
    const player = WaveSurfer.create({
      container: waveform,
      url: box.dataset.src,
      peaks: peaks || [new Float32Array(2)], // a flat line where there are no peaks
      duration,
      height: 72,
      waveColor: styles.getPropertyValue("--wave").trim(),
      progressColor: styles.getPropertyValue("--wave-played").trim(),
      cursorColor: styles.getPropertyValue("--text").trim(),
      barWidth: 2,
      barGap: 1,
      barRadius: 2,
    });
    player.getMediaElement().preload = "metadata";
    players.set(waveform, player);
    box.dataset.peaks = peaks ? "drawn" : "none";
    const button = $("[data-play]", box);
    const time = $("[data-time]", box);
    button.disabled = true;
    player.on("ready", () => {
      button.disabled = false;
      box.dataset.ready = "true";
    });
    player.on("error", () => toast("This audio could not be loaded.", "bad"));
    player.on("timeupdate", (seconds) => {
      time.textContent = clock(seconds);
    });
    player.on("play", () => {
      button.textContent = "Pause";
      box.dataset.playing = "true";
    });
    player.on("pause", () => {
      button.textContent = "Play";
      box.dataset.playing = "false";
    });
    button.addEventListener("click", () => player.playPause());
  }

  // The peaks answer (audiowaveform JSON: per pixel, per channel, min and max) as wavesurfer's
  // channels of values in -1..1, min and max in turn; null when the file has none.
  async function peaksOf(box) {
    if (!box.dataset.peaksUrl) return null;
    let doc;
    try {
      doc = await api(box.dataset.peaksUrl);
    } catch (_) {
      return null; // none (yet): a WAV made before peaks were kept, a source not measured yet
    }
    const { channels, length, data } = doc;
    const scale = 2 ** (doc.bits - 1);
    const lines = [];
    for (let channel = 0; channel < Math.min(channels, 2); channel += 1) {
      const line = new Float32Array(length * 2);
      for (let pixel = 0; pixel < length; pixel += 1) {
        const at = (pixel * channels + channel) * 2;
        line[pixel * 2] = data[at] / scale;
        line[pixel * 2 + 1] = data[at + 1] / scale;
      }
      lines.push(line);
    }
    return lines;
  }

  // --- small conveniences ---------------------------------------------------------------------

  document.addEventListener("click", async (event) => {
    const copy = event.target.closest("[data-copy]");
    if (copy) {
      const field = $(copy.dataset.copy);
      try {
        await navigator.clipboard.writeText(field.value);
        toast("Copied.");
      } catch (_) {
        field.type = "text";
        field.select(); // no clipboard access (plain http): let the person copy it
        toast("Select and copy it with your keyboard.", "warn");
      }
      return;
    }
    const reveal = event.target.closest("[data-reveal]");
    if (reveal) {
      const field = $(reveal.dataset.reveal);
      const hidden = field.type === "password";
      field.type = hidden ? "text" : "password";
      reveal.textContent = hidden ? "Hide" : "Show";
      reveal.setAttribute("aria-pressed", String(hidden));
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    htmx.onLoad((element) => {
      mountPlayers(element);
      localTimes(element);
      labelCells(element);
      pauseControls(element);
    });
    start();
  });
})();
