// lab.js: the httpOnly and Secure experiments on /lab. Hand-written, no
// build step.
//
// "Run document.cookie" reads the cookies exactly as any script on the page
// (an injected one included) can, shows what it read, and sends the value
// under the session cookie's name with the form, so the server can check it
// against the cookie it issued and record the outcome. The server never
// puts the session ID in the page; only a cookie without HttpOnly lets this
// script see it.
//
// The page says which form (data-lab-read, holding the cookie's name) and
// where to show what was read (data-lab-output, an element id): no name is
// written here again.
(function () {
  'use strict';

  function read(name) {
    var all = document.cookie ? document.cookie.split('; ') : [];
    for (var i = 0; i < all.length; i++) {
      var eq = all[i].indexOf('=');
      if (all[i].slice(0, eq) === name) return all[i].slice(eq + 1);
    }
    return '';
  }

  // Secure: whether a Secure cookie is kept here is the browser's own rule
  // (a secure context), so the browser picks which of the page's two
  // explanations holds.
  var context = document.querySelector('[data-lab-context]');
  if (context) {
    var parts = context.querySelectorAll('[data-context]');
    for (var i = 0; i < parts.length; i++) {
      parts[i].hidden = (parts[i].getAttribute('data-context') === 'secure') !== window.isSecureContext;
    }
  }

  document.addEventListener('htmx:configRequest', function (e) {
    var form = e.detail.elt;
    if (!form || !form.hasAttribute || !form.hasAttribute('data-lab-read')) return;
    var saw = document.getElementById(form.getAttribute('data-lab-output'));
    if (saw) saw.textContent = document.cookie === '' ? '(nothing: document.cookie is empty)' : document.cookie;
    e.detail.parameters.read = read(form.getAttribute('data-lab-read'));
  });
})();
