// Ascend dashboard: the only script. Live approval queue (server-sent events), confirm
// dialogs on forms marked data-confirm, and waiting times that keep counting.
"use strict";

function waited(since) {
  const secs = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
  if (secs < 60) return secs + " s";
  if (secs < 3600) return Math.floor(secs / 60) + " min " + (secs % 60) + " s";
  if (secs < 86400) return Math.floor(secs / 3600) + " h " + Math.floor((secs % 3600) / 60) + " min";
  return Math.floor(secs / 86400) + " d " + Math.floor((secs % 86400) / 3600) + " h";
}

function tick() {
  for (const el of document.querySelectorAll(".waited[data-since]")) {
    el.textContent = waited(el.dataset.since);
  }
}

function confirms() {
  document.addEventListener("submit", (event) => {
    const text = event.target.dataset && event.target.dataset.confirm;
    if (text && !window.confirm(text)) event.preventDefault();
  });
}

function liveQueue() {
  const queue = document.getElementById("queue");
  const live = document.getElementById("live");
  if (!queue || !window.EventSource) return;
  const empty = document.getElementById("empty");
  const refresh = () => { if (empty) empty.hidden = queue.children.length > 0; };
  const source = new EventSource("/dashboard/events");
  source.onopen = () => { live.dataset.state = "on"; live.textContent = "Live: new requests appear here."; };
  source.onerror = () => { live.dataset.state = "off"; live.textContent = "Reconnecting…"; };
  source.addEventListener("pending", (event) => {
    const template = document.createElement("template");
    template.innerHTML = event.data.trim();
    const card = template.content.firstElementChild;
    if (!card || document.getElementById(card.id)) return;
    card.classList.add("fresh");
    queue.prepend(card);
    refresh();
  });
  source.addEventListener("decided", (event) => {
    const card = document.getElementById(event.data);
    if (card) card.remove();
    refresh();
  });
  source.addEventListener("reload", () => window.location.reload());
}

document.addEventListener("DOMContentLoaded", () => {
  confirms();
  liveQueue();
  tick();
  setInterval(tick, 1000);
});
