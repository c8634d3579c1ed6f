// embed.js: puts a poll into any page with one line,
//
//   <script src="https://EDGE/embed.js" data-poll="ID" async></script>
//
// It inserts an iframe of EDGE/p/ID?embed=1 right after the script element
// and keeps the iframe as tall as its content: the voting page posts
// {type: "edgepoll:height", poll, height} to its parent whenever its size
// changes, and only messages from that iframe's window and origin, for that
// poll, are believed. Plain DOM on purpose: no dependencies, well under a
// kilobyte, not content-hashed (site editors paste its fixed URL), so it is
// cached for 5 minutes only (OUT/_headers). Optional attributes: data-title (the iframe's accessible title)
// and data-height (the height in px before the first message; default 600).
//
// Signed polls (one vote per account of the site's app): the voting page
// posts {type: "edgepoll:ready", poll, need: "jwt"} when it needs the
// signed-in user's JWT, and this script answers with
// {type: "edgepoll:jwt", poll, jwt} to that iframe only (target origin: the
// edge's). The JWT is the script element's data-jwt attribute, read when
// asked, or else what window.edgepollJWT(pollId) returns (a string or a
// promise of one), so a site can fetch a fresh short-lived JWT each time.
(function () {
  var ID = /^[A-Za-z0-9_-]{1,64}$/;

  function mount(script) {
    if (script.getAttribute("data-edgepoll-mounted")) return;
    script.setAttribute("data-edgepoll-mounted", "1");
    var id = script.getAttribute("data-poll") || "";
    if (!ID.test(id)) {
      if (window.console) console.warn("edgepoll: data-poll must be a poll id (1-64 of A-Z a-z 0-9 - _)");
      return;
    }
    var src = new URL("/p/" + id + "?embed=1", script.src);
    var frame = document.createElement("iframe");
    frame.src = src.href;
    frame.title = script.getAttribute("data-title") || "Live poll";
    frame.setAttribute("width", "100%");
    frame.setAttribute("loading", "lazy");
    frame.setAttribute("frameborder", "0");
    frame.style.border = "0";
    frame.style.width = "100%";
    frame.style.display = "block";
    frame.style.height = (parseInt(script.getAttribute("data-height"), 10) || 600) + "px";
    window.addEventListener("message", function (e) {
      var d = e.data;
      if (e.origin !== src.origin || e.source !== frame.contentWindow) return;
      if (!d || d.poll !== id) return;
      if (d.type === "edgepoll:ready" && d.need === "jwt") {
        sendJWT(script, id, frame, src.origin);
        return;
      }
      if (d.type !== "edgepoll:height") return;
      var h = Math.ceil(Number(d.height));
      if (h > 0 && h < 20000) frame.style.height = h + "px";
    });
    script.parentNode.insertBefore(frame, script.nextSibling);
  }

  // The JWT for poll id: data-jwt, or window.edgepollJWT(id).
  function getJWT(script, id) {
    var a = script.getAttribute("data-jwt");
    if (a) return Promise.resolve(a);
    if (typeof window.edgepollJWT !== "function") return Promise.resolve("");
    return new Promise(function (ok) {
      ok(window.edgepollJWT(id));
    });
  }

  function sendJWT(script, id, frame, origin) {
    getJWT(script, id).then(
      function (jwt) {
        if (typeof jwt === "string" && jwt && frame.contentWindow) {
          frame.contentWindow.postMessage({ type: "edgepoll:jwt", poll: id, jwt: jwt }, origin);
        } else if (window.console) {
          console.warn("edgepoll: poll " + id + " needs a sign-in: set data-jwt or window.edgepollJWT");
        }
      },
      function (err) {
        if (window.console) console.warn("edgepoll: window.edgepollJWT failed", err);
      },
    );
  }

  var me = document.currentScript;
  if (me && me.getAttribute("data-poll") !== null) {
    mount(me);
    return;
  }
  // No currentScript (or a different script): mount every snippet not yet done.
  var all = document.querySelectorAll("script[data-poll]");
  for (var i = 0; i < all.length; i++) {
    if (/\/embed\.js(?:[?#].*)?$/.test(all[i].src)) mount(all[i]);
  }
})();
