/* The service worker of «НЭСК — личный кабинет» (served at /sw.js by app/views/pwa.py, whose
   version renews with every deploy that changes a static file or this file).

   - Static files under hashed names: from the cache first (their content never changes).
   - The cabinets' pages and bill PDFs (/cabinet/…, /business/…): from the network first; a
     signed-in user's copy is kept per user (X-App-User, an opaque key) with the time it was
     fetched, and shown without a network under «Нет связи. Данные на …». A copy is served only
     to the user it was saved for; when another user signs in, the others' copies are deleted.
   - POSTs and other sites' requests are never touched; a page with no copy gets the offline
     page. Signing out deletes everything (the page's script, Clear-Site-Data).
   - push: a JSON payload {title, body, url} becomes a notification; a click opens that url.
   - Messages from the portal's pages (static/js/app.js): "user" (who is signed in), "claim"
     (take over a page loaded past the worker), "keep" (keep a copy of that page), "signout". */
"use strict";

const VERSION = {{ version|tojson }};
const PREFIX = "nesk-";
const STATIC_CACHE = `${PREFIX}${VERSION}-static`;
const PAGES = `${PREFIX}${VERSION}-pages-`;
const META_CACHE = `${PREFIX}meta`;
const USER_ENTRY = "/__app/user";
const OFFLINE_URL = {{ offline_url|tojson }};
const START_URL = {{ start_url|tojson }};
const ICON_URL = {{ icon_url|tojson }};
const PRECACHE = {{ precache|tojson }};
const USER_HEADER = "X-App-User";
const SAVED_HEADER = "X-App-Saved";
const HASHED = /^\/static\/(?!appbuilder\/).+\.[0-9a-f]{12}\.\w+$/;  // not the back office's
const PRIVATE = /^\/(cabinet|business)\//;
const HOMES = ["/cabinet/", "/business/"];
const NEVER = /^\/business\/login\b|\/logout\/?$/;
const KEPT_TYPES = /^(text\/html|application\/pdf)/;

let knownUser = null;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(STATIC_CACHE);
    await cache.addAll(PRECACHE);
    const offline = await fetch(OFFLINE_URL, {credentials: "omit"});
    if (offline.ok) {
      await cache.put(OFFLINE_URL, offline);
    }
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const user = await currentUser();
    for (const name of await caches.keys()) {
      if (!name.startsWith(PREFIX) || name === META_CACHE
          || name.startsWith(`${PREFIX}${VERSION}-`)) {
        continue;
      }
      if (user && name.endsWith(`-pages-${user}`)) {
        await copyCache(name, PAGES + user);  // the user's saved pages outlive a deploy
      }
      await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") {
    return;  // a form's POST always goes to the network and is never kept
  }
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || NEVER.test(url.pathname)) {
    return;
  }
  if (HASHED.test(url.pathname)) {
    event.respondWith(staticFile(event, request));
  } else if (PRIVATE.test(url.pathname)) {
    event.respondWith(networkFirst(event, request));
  } else if (request.mode === "navigate") {
    event.respondWith(publicPage(event, request));
  }
});

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "signout") {
    event.waitUntil(forgetAll());
  } else if (data.type === "claim") {
    event.waitUntil(self.clients.claim());
  } else if (data.type === "user" && typeof data.user === "string" && data.user) {
    event.waitUntil(noteUser(data.user));  // a signed-in page; a visitor's page says nothing
  } else if (data.type === "keep" && typeof data.url === "string") {
    event.waitUntil(keepPage(data.url));
  }
});

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (error) {
    data = {body: event.data ? event.data.text() : ""};
  }
  event.waitUntil(self.registration.showNotification(data.title || "НЭСК — личный кабинет", {
    body: data.body || "",
    icon: ICON_URL,
    badge: ICON_URL,
    lang: "ru",
    data: {url: data.url || START_URL},
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  let target = new URL(START_URL, self.location.origin);
  try {
    const wanted = new URL((event.notification.data || {}).url || START_URL, self.location.origin);
    if (wanted.origin === self.location.origin) {
      target = wanted;  // never another site's address
    }
  } catch (error) {
    // a malformed url: the app's start page
  }
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({type: "window", includeUncontrolled: true});
    const open = windows.find((client) => client.url === target.href);
    if (open) {
      return open.focus();
    }
    return self.clients.openWindow(target.href);
  })());
});

async function staticFile(event, request) {
  const cache = await caches.open(STATIC_CACHE);
  const kept = await cache.match(request, {ignoreVary: true});
  if (kept) {
    return kept;
  }
  const response = await fetch(request);
  if (response.ok && response.type === "basic") {
    event.waitUntil(cache.put(request, response.clone()));
  }
  return response;
}

async function networkFirst(event, request) {
  let response;
  try {
    response = await fetch(request);
  } catch (error) {
    const kept = await savedCopy(request.url);
    if (kept) {
      return kept;
    }
    return request.mode === "navigate" ? offlinePage() : Response.error();
  }
  event.waitUntil(afterNetwork(request.url, response.clone(), request.mode === "navigate"));
  return response;
}

async function publicPage(event, request) {
  try {
    const response = await fetch(request);
    event.waitUntil(afterNetwork(request.url, response.clone(), true));
    return response;
  } catch (error) {
    if (new URL(request.url).pathname === START_URL) {
      for (const home of HOMES) {  // the installed app opens offline: the user's saved cabinet
        if (await savedCopy(new URL(home, self.location.origin).href)) {
          return Response.redirect(home, 302);
        }
      }
    }
    return offlinePage();
  }
}

/* Learn who is signed in from a page, then keep the copy when it is the user's own. */
async function afterNetwork(url, response, isPage) {
  if (!response.ok || response.type !== "basic") {
    return;
  }
  const user = response.headers.get(USER_HEADER) || "";
  const type = response.headers.get("Content-Type") || "";
  if (isPage && type.startsWith("text/html")) {
    await noteUser(user);
  }
  const path = new URL(url).pathname;
  if (user && PRIVATE.test(path) && !NEVER.test(path) && KEPT_TYPES.test(type)
      && user === await currentUser()) {
    const headers = new Headers(response.headers);
    headers.set(SAVED_HEADER, String(Date.now()));
    headers.delete("Content-Encoding");
    headers.delete("Content-Length");
    const copy = new Response(await response.blob(), {
      status: response.status, statusText: response.statusText, headers});
    await (await caches.open(PAGES + user)).put(url, copy);
  }
}

/* The page the worker first took control of was fetched before it could keep a copy. */
async function keepPage(href) {
  const url = new URL(href, self.location.origin);
  if (url.origin !== self.location.origin || !PRIVATE.test(url.pathname)) {
    return;
  }
  try {
    const response = await fetch(url.href, {credentials: "same-origin"});
    await afterNetwork(url.href, response, true);
  } catch (error) {
    // no network after all: nothing to keep
  }
}

async function savedCopy(url) {
  const user = await currentUser();
  if (!user || !(await caches.has(PAGES + user))) {
    return null;
  }
  const kept = await (await caches.open(PAGES + user)).match(url, {ignoreVary: true});
  if (!kept || kept.headers.get(USER_HEADER) !== user) {
    return null;  // never another user's copy
  }
  if (!(kept.headers.get("Content-Type") || "").startsWith("text/html")) {
    return kept;
  }
  const banner = `<p class="app-offline" role="status"><b>Нет связи.</b> Данные на ${
    stamp(Number(kept.headers.get(SAVED_HEADER)))}</p>`;
  const html = (await kept.text()).replace(/<main\b[^>]*>/, (tag) => tag + banner);
  return new Response(html, {status: kept.status, statusText: kept.statusText,
                             headers: kept.headers});
}

async function offlinePage() {
  const kept = await caches.match(OFFLINE_URL, {ignoreVary: true});
  return kept || new Response(
    "<!DOCTYPE html><html lang=\"ru\"><meta charset=\"utf-8\"><title>Нет связи</title>"
    + "<main><h1>Нет связи</h1><p>Откройте страницу, когда появится интернет.</p></main></html>",
    {status: 503, headers: {"Content-Type": "text/html; charset=utf-8"}});
}

function stamp(time) {
  const when = new Date(time || Date.now());
  const two = (number) => String(number).padStart(2, "0");
  return `${two(when.getDate())}.${two(when.getMonth() + 1)}.${when.getFullYear()} `
    + `${two(when.getHours())}:${two(when.getMinutes())}`;
}

async function currentUser() {
  if (knownUser === null) {
    const kept = await (await caches.open(META_CACHE)).match(USER_ENTRY);
    knownUser = kept ? await kept.text() : "";
  }
  return knownUser;
}

/* A page told who is signed in now: a different user's copies go at once. */
async function noteUser(user) {
  if (user === await currentUser()) {
    return;
  }
  knownUser = user;
  await (await caches.open(META_CACHE)).put(USER_ENTRY, new Response(user));
  if (!user) {
    return;  // signed out elsewhere: nothing is shown until that user signs in again
  }
  for (const name of await caches.keys()) {
    if (name.startsWith(PREFIX) && name.includes("-pages-") && !name.endsWith(`-pages-${user}`)) {
      await caches.delete(name);
    }
  }
}

async function forgetAll() {
  knownUser = "";
  for (const name of await caches.keys()) {
    if (name.startsWith(PREFIX)) {
      await caches.delete(name);
    }
  }
}

async function copyCache(from, to) {
  const source = await caches.open(from);
  const target = await caches.open(to);
  for (const request of await source.keys()) {
    const response = await source.match(request);
    if (response) {
      await target.put(request, response);
    }
  }
}
