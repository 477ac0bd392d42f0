// Chatto's service worker (served as /sw.js so its scope is the whole site). It shows Web Push notifications and
// brings the app forward when one is clicked. It caches nothing and handles no fetch: every request, API or page,
// goes to the network exactly as if it were not installed, so nothing stale or private is ever kept here.
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (e) {
    data = { body: event.data ? event.data.text() : "" };
  }
  const title = typeof data.title === "string" && data.title ? data.title.slice(0, 100) : "Chatto";
  const body = typeof data.body === "string" ? data.body.slice(0, 100) : "";
  const tag = typeof data.tag === "string" && data.tag ? data.tag : undefined;
  event.waitUntil((async () => {
    // someone looking at Chatto right now hears the page's own chime; a test push always shows
    const wins = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    if (data.cause !== "test" && wins.some((w) => w.focused && w.visibilityState === "visible")) return;
    await self.registration.showNotification(title, {
      body, tag, renotify: !!tag, icon: "/static/icon.svg",
      data: { url: typeof data.url === "string" && data.url.startsWith("/") ? data.url : "/" },
    });
  })());
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil((async () => {
    const wins = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const w of wins) {
      if (new URL(w.url).origin === self.location.origin) {
        await w.focus();
        if (url !== "/" && "navigate" in w) await w.navigate(url);
        return;
      }
    }
    await self.clients.openWindow(url);
  })());
});
