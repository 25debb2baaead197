// live.js: the page's live updates from GET /live, and what the page says
// when the server goes away and comes back. Hand-written, no build step.
//
// Why not htmx's SSE extension: that opens one stream per tab, and browsers
// open at most six HTTP/1.1 connections per host, so a seventh tab would
// hang. This script keeps one stream per browser, shared by its tabs: the
// tab holding the Web Lock "sessionlab-live" reads the stream and passes
// every event to the other tabs over a BroadcastChannel; when it closes,
// another tab takes the lock and the stream over. Where Web Locks are
// missing (plain HTTP from another machine is not a secure context), each
// tab reads its own stream, only while it is visible.
//
// Every name it uses (attributes, events, ids) comes from its script tag's
// data-names, written from views/names.go. A page takes part once it has
// an element with the "live" attribute; an event's data replaces the content
// of elements whose "swap" attribute names it, and triggers elements whose
// hx-trigger is the "trigger" prefix plus its name (live:count), unless
// their "shown" attribute is the event's data (what they show already).
(function () {
  'use strict';

  var N = JSON.parse(document.currentScript.getAttribute('data-names'));
  var LOCK = 'sessionlab-live';
  var status = document.getElementById(N.status);
  var live = false; // this page takes part (it has, or got, a live element)
  var url = '/live';
  var channel = 'BroadcastChannel' in window ? new BroadcastChannel(LOCK) : null;
  var shared = !!(channel && navigator.locks);

  // What this tab knows: the process that served it, and whether the
  // stream is down (then clicks are held back and say why).
  var known = processID(document);
  var down = false;
  var hasStream = false;
  // While down: the retry's news, and a click's "not sent", which stays
  // under it until the server is back (each retry rewrites the line).
  var downNews = '', notSent = '';

  function processID(root) {
    var el = root.querySelector('[' + N.process + ']');
    return el ? el.getAttribute(N.process) : '';
  }

  // say puts news about the server in the status line under the header.
  // Once this page asked for a restart, the line beside the restart button
  // says "restarting" until the server is back, then says that too (a copy
  // for the eyes: screen readers hear the status line).
  function say(state, html) {
    if (!status) return;
    status.setAttribute('data-state', state);
    status.innerHTML = html;
    var near = document.getElementById(N.restartStatus);
    if (state === 'back' && near && near.hasChildNodes()) {
      near.setAttribute('aria-hidden', 'true');
      near.innerHTML = html;
      near.scrollIntoView({ block: 'nearest' });
      keepNear = Date.now() + 3000;
    }
  }

  // The stream's first events after a restart (its own commands, a count)
  // grow the panel above the footer and would push the news beside the
  // button out of view: for a moment it is kept where the click was.
  // Until the reader goes elsewhere: a scroll that leaves the news out of
  // view (wheel, keys, a scroll bar, a link) ends the hold, or the page
  // would pull them back while they reach for a button above. Growth
  // alone fires no scroll event, and scroll events run before animation
  // frames, so the hold never undoes such a scroll.
  var keepNear = 0;
  function holdNear() {
    if (Date.now() > keepNear) return;
    requestAnimationFrame(function () {
      var near = document.getElementById(N.restartStatus);
      if (near && Date.now() <= keepNear) near.scrollIntoView({ block: 'nearest' });
    });
  }
  window.addEventListener('scroll', function () {
    if (Date.now() > keepNear) return;
    var near = document.getElementById(N.restartStatus);
    if (!near) return;
    var r = near.getBoundingClientRect();
    if (r.bottom <= 0 || r.top >= window.innerHeight) keepNear = 0;
  }, { passive: true });

  // ---- what a message does to this tab ----

  function handle(msg) {
    if (msg.type === 'down') {
      down = true;
      downNews = '<p class="banner warn" data-testid="live-down"><strong>The server is not answering.</strong> ' +
        'This page lost its connection and is retrying (attempt ' + msg.attempt + '). ' +
        'Nothing you click is sent until it answers again.</p>';
      say('down', downNews + notSent);
    } else if (msg.type === 'busy') {
      say('busy', '<p class="banner" data-testid="live-busy"></p>');
      if (status) status.firstChild.textContent = msg.text;
    } else if (msg.type === 'event') {
      if (msg.name === N.hello) {
        hello(msg.data);
        htmx.trigger(document.body, N.open, {});
      } else {
        dispatch(msg.name, msg.data);
        htmx.trigger(document.body, N.message, { type: msg.name, data: msg.data });
      }
    }
  }

  function hello(data) {
    var t = document.createElement('template');
    t.innerHTML = data;
    var pid = processID(t.content);
    if (down || (known && pid !== known)) {
      var notice = t.content.querySelector('[data-testid="' + N.back + '"]');
      say('back', notice ? notice.outerHTML : '');
      var badge = t.content.getElementById(N.processBadge);
      var old = document.getElementById(N.processBadge);
      if (badge && old) old.replaceWith(badge);
    } else if (status && status.getAttribute('data-state') === 'busy') {
      // Let in again after a 429 or making room: the line said updates
      // would resume, and now they have.
      status.removeAttribute('data-state');
      status.innerHTML = '';
    }
    down = false;
    downNews = notSent = '';
    known = pid;
    // Catch up with the count as stored now (counts made while this page
    // was not listening reached nobody).
    var root = t.content.firstElementChild;
    var count = document.querySelector('[' + N.swap + '~="' + N.count + '"]');
    if (root && root.getAttribute(N.session) === 'true' && count &&
        count.textContent.trim() !== root.getAttribute(N.views)) {
      dispatch(N.count, root.getAttribute(N.views));
    }
  }

  function dispatch(name, data) {
    document.querySelectorAll('[' + N.swap + ']').forEach(function (el) {
      var names = el.getAttribute(N.swap).split(',').map(function (s) { return s.trim(); });
      if (names.indexOf(name) >= 0) {
        htmx.swap(el, data, { swapStyle: el.getAttribute('hx-swap') || 'innerHTML' });
      }
    });
    // An element whose N.shown is the event's data already shows it.
    document.querySelectorAll('[hx-trigger]').forEach(function (el) {
      if (el.getAttribute('hx-trigger').split(/[\s,]+/).indexOf(N.trigger + name) >= 0 && el.getAttribute(N.shown) !== data) {
        htmx.trigger(el, N.trigger + name, { data: data });
      }
    });
    holdNear();
  }

  // deliver acts on this tab and, when the stream is shared, on the others.
  function deliver(msg) {
    handle(msg);
    if (shared) channel.postMessage(msg);
  }

  // ---- the stream (in the tab that reads it) ----

  var reading = null; // AbortController of the stream being read
  var attempt = 0;
  var retry = 0;
  var idle = false; // no session: nothing to listen to until one exists
  var busy = 0; // refused (429): ms until the server takes this stream

  // Reconnect delays double from half a second to 15 s: a restart is back
  // within the first few tries, and a long outage costs a request (and a
  // red line in the console) every 15 s, not every second. A click or
  // another tab seeing the server again tries at once (kick).
  function delay(n) { return Math.min(500 * Math.pow(2, n - 1), 15000); }

  function connect() {
    clearTimeout(retry);
    if (reading) reading.abort();
    var ctl = new AbortController();
    reading = ctl;
    idle = false;
    var last = '';
    var sep = url.indexOf('?') < 0 ? '?' : '&';
    fetch(url + sep + 'process=' + encodeURIComponent(known), {
      headers: { Accept: 'text/event-stream' }, cache: 'no-store', credentials: 'same-origin', signal: ctl.signal
    }).then(function (res) {
      if (res.status === 429) {
        // Too many live pages from here: the server is fine, so this is
        // not "not answering"; ask again when the server says.
        busy = (parseInt(res.headers.get('Retry-After'), 10) || 30) * 1000;
        return res.text().then(function (text) { deliver({ type: 'busy', text: text }); });
      }
      if (!res.ok || !res.body) throw new Error('status ' + res.status);
      var reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      var buf = '';
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) return;
          buf += r.value.replace(/\r\n?/g, '\n');
          var i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            var ev = parse(buf.slice(0, i));
            buf = buf.slice(i + 2);
            if (!ev) continue;
            if (ev.name === N.madeRoom) {
              // This stream made room for another address's: as after a
              // 429, say so and ask again when the server says.
              busy = (parseInt(ev.retry, 10) || 30000);
              deliver({ type: 'busy', text: ev.data });
              continue;
            }
            if (ev.name === N.hello) {
              attempt = 0;
              idle = ev.data.indexOf(N.session + '="false"') >= 0;
            }
            last = ev.name;
            deliver({ type: 'event', name: ev.name, data: ev.data });
          }
          return pump();
        });
      }
      return pump();
    }).then(function () {
      if (ctl !== reading) return;
      reading = null;
      if (busy) { schedule(busy); busy = 0; return; }
      if (last === N.ended) schedule(1500); // the session ended: listen again with the browser's new cookie
      else if (!idle) lost(); // ended by the server going away
    }, function () {
      if (ctl.signal.aborted || ctl !== reading) return;
      reading = null;
      lost();
    });
  }

  function parse(block) {
    var name = 'message', data = [], any = false, wait = '';
    block.split('\n').forEach(function (line) {
      if (line === '' || line[0] === ':') return;
      var i = line.indexOf(':');
      var field = i < 0 ? line : line.slice(0, i);
      var value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') name = value;
      else if (field === 'data') { data.push(value); any = true; }
      else if (field === 'retry') wait = value;
    });
    return any ? { name: name, data: data.join('\n'), retry: wait } : null;
  }

  function lost() {
    attempt++;
    deliver({ type: 'down', attempt: attempt });
    schedule(delay(attempt));
  }

  function schedule(ms) {
    clearTimeout(retry);
    retry = setTimeout(connect, ms);
  }

  // kick: something may have changed (a session was created, a tab saw the
  // server fail): a reader without a stream tries now.
  function kick() {
    if (shared) channel.postMessage({ type: 'kick' });
    onKick();
  }

  function onKick() {
    if (hasStream && !reading) connect();
  }

  function lead() {
    hasStream = true;
    connect();
  }

  // ---- start ----

  if (channel) {
    channel.onmessage = function (e) {
      if (e.data.type === 'kick') onKick();
      else if (shared) handle(e.data);
    };
  }
  // start makes the page take part once it has a live element: at load,
  // or when htmx swaps one in (a login form becomes the profile).
  function start() {
    var el = document.querySelector('[' + N.live + ']');
    if (live || !el) return;
    live = true;
    url = el.getAttribute(N.live);
    if (shared) {
      navigator.locks.request(LOCK, function () {
        lead();
        return new Promise(function () {}); // held until the tab closes or leaves the page
      });
      kick(); // a reader that had no session may now have one
    } else {
      lead();
      document.addEventListener('visibilitychange', function () {
        if (document.hidden) {
          clearTimeout(retry);
          if (reading) { reading.abort(); reading = null; }
        } else {
          connect();
        }
      });
    }
  }
  start();
  document.body.addEventListener('htmx:load', start);

  // Relative times ("3 min ago", "in 29 min") are the server's words for the
  // moment it drew them; rewritten every few seconds, they stay true on a
  // page left open. They are counted on the server's clock (the page's N.now
  // meta), so a browser whose clock is off says what the server would; the
  // words are views.ago's and views.until's.
  var meta = document.querySelector('meta[name="' + N.now + '"]');
  var skew = meta ? Date.parse(meta.getAttribute('content')) - Date.now() : 0;
  if (isNaN(skew)) skew = 0;
  function agoText(ms) {
    var s = Math.round(ms / 1000);
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min ago';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min ago';
  }
  function untilText(ms) {
    var m = Math.round(ms / 60000);
    if (m < 1) return 'in less than a minute';
    if (m < 60) return 'in ' + m + ' min';
    return 'in ' + Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }
  setInterval(function () {
    var now = Date.now() + skew;
    document.querySelectorAll('[' + N.ago + '],[' + N.until + ']').forEach(function (el) {
      var from = el.getAttribute(N.ago);
      var text = from !== null ? agoText(now - Date.parse(from)) : untilText(Date.parse(el.getAttribute(N.until)) - now);
      if (el.textContent !== text) el.textContent = text;
    });
  }, 5000);
  // Leaving the page ends its stream and any pending retry first, so no
  // retry starts as it goes. (Whether a browser logs a stream cancelled by
  // the navigation: headless Chromium 156 does not, either way.)
  window.addEventListener('pagehide', function () {
    clearTimeout(retry);
    if (reading) { var r = reading; reading = null; r.abort(); }
  });

  // A click while the server is down says so instead of doing nothing.
  document.body.addEventListener('htmx:beforeRequest', function (e) {
    if (!down) return;
    e.preventDefault();
    notSent = '<p class="banner warn" data-testid="live-not-sent"><strong>Not sent:</strong> the server is not answering. ' +
      'This page is retrying and shows when the server is back.</p>';
    say('down', downNews + notSent);
  });
  document.body.addEventListener('htmx:sendError', function () {
    notSent = '<p class="banner warn" data-testid="live-not-sent"><strong>Not sent:</strong> the server did not answer. ' +
      'It may be restarting; this page is retrying and shows when it is back.</p>';
    say('down', downNews + notSent);
    if (live) { // this browser has a stream: it notices the return
      down = true;
      kick();
    }
  });
  document.body.addEventListener(N.sessionChanged, kick);
  // The restart's answer lands under its button, at the foot of the page:
  // once the whole answer is in (the panel above may have grown), the
  // answer is scrolled into view.
  document.body.addEventListener('htmx:afterSettle', function (e) {
    if (e.detail.target && e.detail.target.id === N.restartStatus) e.detail.target.scrollIntoView({ block: 'nearest' });
  });
})();
