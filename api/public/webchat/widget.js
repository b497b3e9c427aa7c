/*
 * Parley web chat widget. Embed on any site:
 *
 *   <script src="https://YOUR-PARLEY-HOST/webchat/widget.js" data-widget-key="wc_..." async></script>
 *
 * Attributes: data-widget-key (required); data-mode "bubble" (default: a button in the corner
 * opens the chat) or "inline" (fills data-container); data-container (CSS selector, inline
 * mode); data-title (header text); data-api (Parley base URL; default: where this script came from).
 *
 * The visitor is anonymous: at its first message the server creates it and returns a signed
 * visitor token, kept in localStorage and sent only in the Authorization header (never in a
 * URL). Messages are POSTed with a client id (a retry is recorded once); replies arrive as
 * Server-Sent Events read with fetch streaming (EventSource cannot send a header), resumed
 * after a drop from the last event id. Plain ES2019, no build step, no dependencies.
 */
/* global window, document, localStorage, fetch, setTimeout, clearTimeout, URL, console, TextDecoder, AbortController */
(function () {
  'use strict';

  var script = document.currentScript || document.querySelector('script[data-widget-key]');
  if (!script) return;
  var widgetKey = script.getAttribute('data-widget-key') || '';
  if (!/^wc_[A-Za-z0-9_-]{8,64}$/.test(widgetKey)) {
    console.error('[parley] web chat: data-widget-key is missing or invalid');
    return;
  }
  var mode = script.getAttribute('data-mode') === 'inline' ? 'inline' : 'bubble';
  var title = script.getAttribute('data-title') || 'Chat with us';
  var apiBase = (script.getAttribute('data-api') || new URL('.', script.src).href.replace(/webchat\/$/, '')).replace(/\/?$/, '/');
  var base = apiBase + 'webchat/' + encodeURIComponent(widgetKey);
  var MAX_TEXT = 4096;

  // ---- the visitor (a server-signed token) ----

  function randomId(n) {
    var alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
    var bytes = new Uint8Array(n);
    window.crypto.getRandomValues(bytes);
    var out = '';
    for (var i = 0; i < n; i++) out += alphabet[bytes[i] & 63];
    return out;
  }

  var storageKey = 'parley.webchat.token.' + widgetKey;
  var TOKEN_RE = /^vt1\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/;
  var visitorToken = null;
  try {
    visitorToken = localStorage.getItem(storageKey);
    if (visitorToken && !TOKEN_RE.test(visitorToken)) visitorToken = null;
  } catch {
    // storage blocked (privacy mode, sandboxed frame): a visitor for this page view only
  }
  var creatingVisitor = null;

  function forgetVisitor() {
    visitorToken = null;
    try {
      localStorage.removeItem(storageKey);
    } catch {
      /* storage blocked */
    }
  }

  /** The visitor token; the server creates the visitor at the first message (rate limited). */
  function ensureVisitor() {
    if (visitorToken) return Promise.resolve(visitorToken);
    if (creatingVisitor) return creatingVisitor;
    creatingVisitor = fetch(base + '/visitors', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      .then(function (res) {
        return res.json().then(
          function (body) {
            if (res.status !== 201 || !body || !TOKEN_RE.test(body.visitorToken)) {
              var err = new Error((body && body.error && body.error.message) || 'could not start the chat');
              err.status = res.status;
              throw err;
            }
            visitorToken = body.visitorToken;
            try {
              localStorage.setItem(storageKey, visitorToken);
            } catch {
              /* storage blocked */
            }
            return visitorToken;
          },
          function () {
            var err = new Error('could not start the chat');
            err.status = res.status;
            throw err;
          },
        );
      })
      .then(
        function (t) {
          creatingVisitor = null;
          return t;
        },
        function (err) {
          creatingVisitor = null;
          throw err;
        },
      );
    return creatingVisitor;
  }

  function authHeaders(extra) {
    var h = { authorization: 'Bearer ' + visitorToken };
    for (var k in extra || {}) h[k] = extra[k];
    return h;
  }

  // ---- DOM ----

  var css =
    '.parley-wc{box-sizing:border-box;display:flex;flex-direction:column;background:#fff;color:#111827;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;border:1px solid #e5e7eb;border-radius:12px;overflow:hidden;box-shadow:0 8px 24px rgba(0,0,0,.12)}' +
    '.parley-wc *{box-sizing:border-box}' +
    '.parley-wc-inline{flex:1;width:100%;min-height:320px}' +
    '.parley-wc-panel{position:fixed;right:20px;bottom:88px;width:360px;max-width:calc(100vw - 40px);height:520px;max-height:calc(100vh - 120px);z-index:2147483646}' +
    '.parley-wc-hidden{display:none}' +
    '.parley-wc-launcher{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;background:#2563eb;color:#fff;font-size:24px;cursor:pointer;box-shadow:0 4px 12px rgba(0,0,0,.2);z-index:2147483647}' +
    '.parley-wc-header{padding:12px 16px;background:#2563eb;color:#fff;font-weight:600}' +
    '.parley-wc-messages{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f9fafb}' +
    '.parley-wc-msg{max-width:80%;padding:8px 12px;border-radius:14px;white-space:pre-wrap;word-wrap:break-word}' +
    '.parley-wc-msg[data-direction=inbound]{align-self:flex-end;background:#2563eb;color:#fff;border-bottom-right-radius:4px}' +
    '.parley-wc-msg[data-direction=outbound]{align-self:flex-start;background:#e5e7eb;color:#111827;border-bottom-left-radius:4px}' +
    '.parley-wc-msg[data-state=sending]{opacity:.6}' +
    '.parley-wc-msg[data-state=failed]{background:#fee2e2;color:#991b1b}' +
    '.parley-wc-typing{align-self:flex-start;color:#6b7280;font-style:italic;padding:0 4px}' +
    '.parley-wc-status{padding:4px 12px;font-size:12px;color:#92400e;background:#fef3c7}' +
    '.parley-wc-form{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e7eb;background:#fff}' +
    '.parley-wc-input{flex:1;resize:none;border:1px solid #d1d5db;border-radius:8px;padding:8px;font:inherit;min-height:38px;max-height:120px}' +
    '.parley-wc-send{border:0;border-radius:8px;background:#2563eb;color:#fff;padding:0 16px;font:inherit;font-weight:600;cursor:pointer}' +
    '.parley-wc-send:disabled{opacity:.5;cursor:default}' +
    '.parley-wc-rich-header{font-weight:600;margin-bottom:4px}' +
    '.parley-wc-rich-footer{font-size:12px;color:#6b7280;margin-top:4px}' +
    '.parley-wc-options{display:flex;flex-direction:column;gap:4px;margin-top:8px}' +
    '.parley-wc-section{font-size:12px;font-weight:600;color:#6b7280;margin-top:4px}' +
    '.parley-wc-option{border:1px solid #2563eb;border-radius:8px;background:#fff;color:#2563eb;padding:6px 10px;font:inherit;cursor:pointer;text-align:left;white-space:normal}' +
    '.parley-wc-option:disabled{opacity:.5;cursor:default}' +
    '.parley-wc-option small{display:block;color:#6b7280}' +
    '.parley-wc-image{display:block;max-width:100%;border-radius:8px}';

  function el(tag, cls, attrs) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }

  var style = el('style');
  style.textContent = css;
  document.head.appendChild(style);

  var root = el('div', 'parley-wc ' + (mode === 'inline' ? 'parley-wc-inline' : 'parley-wc-panel parley-wc-hidden'), { 'data-parley': 'root', role: 'region', 'aria-label': title });
  var header = el('div', 'parley-wc-header');
  header.textContent = title;
  var list = el('div', 'parley-wc-messages', { 'data-parley': 'messages', role: 'log', 'aria-live': 'polite' });
  var typing = el('div', 'parley-wc-typing', { 'data-parley': 'typing' });
  typing.textContent = '…';
  typing.hidden = true;
  var status = el('div', 'parley-wc-status', { 'data-parley': 'status' });
  status.hidden = true;
  var form = el('form', 'parley-wc-form');
  var input = el('textarea', 'parley-wc-input', { 'data-parley': 'input', rows: '1', maxlength: String(MAX_TEXT), placeholder: 'Write a message…', 'aria-label': 'Message' });
  var sendButton = el('button', 'parley-wc-send', { 'data-parley': 'send', type: 'submit' });
  sendButton.textContent = 'Send';
  form.appendChild(input);
  form.appendChild(sendButton);
  root.appendChild(header);
  root.appendChild(list);
  root.appendChild(status);
  root.appendChild(form);

  function mount() {
    if (mode === 'inline') {
      var container = document.querySelector(script.getAttribute('data-container') || '') || document.body;
      container.appendChild(root);
    } else {
      var launcher = el('button', 'parley-wc-launcher', { 'data-parley': 'launcher', type: 'button', 'aria-label': title });
      launcher.textContent = '💬';
      launcher.addEventListener('click', function () {
        root.classList.toggle('parley-wc-hidden');
        if (!root.classList.contains('parley-wc-hidden')) input.focus();
      });
      document.body.appendChild(root);
      document.body.appendChild(launcher);
    }
  }
  if (document.body) mount();
  else document.addEventListener('DOMContentLoaded', mount);

  // ---- messages ----

  /** message element by server id, and by client id for the visitor's own messages */
  var byId = {};
  var byClientId = {};

  function scrollDown() {
    list.scrollTop = list.scrollHeight;
  }

  function showTyping(on) {
    typing.hidden = !on;
    if (on) list.appendChild(typing);
    scrollDown();
  }

  function insertBySeq(node, seq) {
    var items = list.querySelectorAll('.parley-wc-msg[data-seq]');
    for (var i = 0; i < items.length; i++) {
      if (Number(items[i].getAttribute('data-seq')) > seq) {
        list.insertBefore(node, items[i]);
        return;
      }
    }
    list.insertBefore(node, typing.parentNode === list ? typing : null);
  }

  function bubble(direction, text) {
    var node = el('div', 'parley-wc-msg', { 'data-direction': direction });
    node.textContent = text; // text only: a message can never inject markup
    return node;
  }

  /** Only http(s) URLs become an image source. */
  function safeUrl(u) {
    return typeof u === 'string' && /^https?:\/\//i.test(u) ? u : null;
  }

  function textDiv(cls, text) {
    var d = el('div', cls);
    d.textContent = text;
    return d;
  }

  /**
   * A reply with buttons, a list or an image (the server's `rich`): text nodes only, options as
   * buttons; a click sends the option's title as the visitor's reply, with its id.
   */
  function richBubble(m) {
    var r = m.rich;
    var node = el('div', 'parley-wc-msg', { 'data-direction': m.direction, 'data-rich': r.type });
    if (r.type === 'image') {
      var src = safeUrl(r.imageUrl);
      if (src) {
        var img = el('img', 'parley-wc-image', { 'data-parley': 'image', alt: r.caption || 'image' });
        img.src = src;
        node.appendChild(img);
      }
      if (r.caption) node.appendChild(textDiv('', r.caption));
      return node;
    }
    if (r.header) node.appendChild(textDiv('parley-wc-rich-header', r.header));
    if (r.body) node.appendChild(textDiv('', r.body));
    var options = el('div', 'parley-wc-options', { 'data-parley': 'options' });
    var lastSection;
    (r.options || []).forEach(function (o) {
      if (o.section && o.section !== lastSection) options.appendChild(textDiv('parley-wc-section', o.section));
      lastSection = o.section;
      var b = el('button', 'parley-wc-option', { type: 'button', 'data-parley': 'option', 'data-option-id': o.id });
      b.textContent = o.title;
      if (o.description) {
        var small = document.createElement('small');
        small.textContent = o.description;
        b.appendChild(small);
      }
      b.addEventListener('click', function () {
        var all = options.querySelectorAll('button');
        for (var i = 0; i < all.length; i++) all[i].disabled = true;
        b.setAttribute('data-chosen', 'true');
        sendText(o.title, { id: o.id });
      });
      options.appendChild(b);
    });
    node.appendChild(options);
    if (r.footer) node.appendChild(textDiv('parley-wc-rich-footer', r.footer));
    return node;
  }

  /** A message from the server (history or stream); idempotent. */
  function receive(m) {
    if (!m || typeof m.id !== 'string' || byId[m.id]) return;
    var node = m.clientMessageId ? byClientId[m.clientMessageId] : undefined;
    if (node) {
      node.setAttribute('data-state', 'delivered');
      node.setAttribute('data-seq', String(m.seq));
    } else {
      node = m.rich && typeof m.rich === 'object' ? richBubble(m) : bubble(m.direction, m.text);
      node.setAttribute('data-seq', String(m.seq));
      node.setAttribute('data-state', 'delivered');
      if (m.clientMessageId) byClientId[m.clientMessageId] = node;
      insertBySeq(node, m.seq);
    }
    node.setAttribute('data-id', m.id);
    byId[m.id] = node;
    if (m.direction === 'outbound') showTyping(false);
    scrollDown();
  }

  // ---- sending ----

  function post(text, clientMessageId, node, attempt, option) {
    ensureVisitor()
      .then(
        function () {
          return fetch(base + '/messages', {
            method: 'POST',
            headers: authHeaders({ 'content-type': 'application/json' }),
            body: JSON.stringify(option ? { text: text, clientMessageId: clientMessageId, option: option } : { text: text, clientMessageId: clientMessageId }),
          });
        },
        function (err) {
          // no visitor: 429 (too many new conversations) and 5xx are worth a retry
          if (err.status && err.status !== 429 && err.status < 500) return { status: err.status, json: function () { return Promise.resolve({ error: { message: err.message } }); } };
          throw err;
        },
      )
      .then(function (res) {
        if (res.status === 202) {
          if (node.getAttribute('data-state') === 'sending') node.setAttribute('data-state', 'sent');
          conversationStarted();
          return;
        }
        if (res.status === 401 && attempt < 5) {
          // the token is no longer valid (the server's key changed): a new visitor
          forgetVisitor();
          retry();
          return;
        }
        if ((res.status >= 500 || res.status === 429) && attempt < 5) {
          retry();
          return;
        }
        return res.json().then(
          function (body) {
            fail(body && body.error && body.error.message);
          },
          function () {
            fail();
          },
        );
      })
      .catch(function () {
        if (attempt < 5) retry();
        else fail('could not reach the chat; check your connection');
      });
    function retry() {
      // same clientMessageId: the server records the message once however often it is retried
      setTimeout(function () {
        post(text, clientMessageId, node, attempt + 1, option);
      }, 500 * Math.pow(2, attempt));
    }
    function fail(reason) {
      node.setAttribute('data-state', 'failed');
      node.title = 'Not sent' + (reason ? ': ' + reason : '');
      showTyping(false);
    }
  }

  function send() {
    var text = input.value.trim();
    if (!text) return;
    if (text.length > MAX_TEXT) text = text.slice(0, MAX_TEXT);
    input.value = '';
    sendText(text);
  }

  /** Show the visitor's message and post it (`option`: the id of a clicked button or list row). */
  function sendText(text, option) {
    var clientMessageId = 'c_' + Date.now().toString(36) + '_' + randomId(12);
    var node = bubble('inbound', text);
    node.setAttribute('data-state', 'sending');
    byClientId[clientMessageId] = node;
    list.insertBefore(node, typing.parentNode === list ? typing : null);
    showTyping(true);
    post(text, clientMessageId, node, 0, option);
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    send();
  });
  input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });

  // ---- the stream (fetch streaming: the token goes in a header, never in the URL) ----

  var lastEventId = 0;
  var streaming = false;
  var controller = null;
  var reconnectTimer;
  var reconnectDelay = 1000;

  function setStatus(text) {
    status.textContent = text || '';
    status.hidden = !text;
  }

  /** The visitor has a conversation: read its stream (once). */
  function conversationStarted() {
    if (!streaming) {
      streaming = true;
      connect();
    }
  }

  function scheduleReconnect(delay) {
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, delay);
  }

  /** One SSE block: `id:` moves the resume point, `data:` is a message. */
  function onBlock(block) {
    var data = [];
    var lines = block.split('\n');
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i];
      if (line.indexOf('id:') === 0) {
        var id = line.slice(3).trim();
        if (/^\d+$/.test(id)) lastEventId = Number(id);
      } else if (line.indexOf('data:') === 0) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (!data.length) return;
    try {
      receive(JSON.parse(data.join('\n')));
    } catch (err) {
      console.error('[parley] web chat: bad event', err);
    }
  }

  function connect() {
    clearTimeout(reconnectTimer);
    if (!visitorToken) return;
    if (controller) controller.abort();
    var ctl = typeof AbortController === 'function' ? new AbortController() : null;
    controller = ctl;
    fetch(base + '/stream', { headers: authHeaders({ accept: 'text/event-stream', 'last-event-id': String(lastEventId) }), cache: 'no-store', signal: ctl ? ctl.signal : undefined })
      .then(function (res) {
        if (res.status === 401) {
          forgetVisitor();
          streaming = false;
          setStatus('');
          return;
        }
        if (res.status !== 200 || !res.body) {
          var after = Number(res.headers.get('retry-after')) * 1000;
          setStatus('Reconnecting…');
          scheduleReconnect(Math.max(reconnectDelay, after || 0));
          reconnectDelay = Math.min(reconnectDelay * 2, 30000);
          return;
        }
        reconnectDelay = 1000;
        setStatus('');
        var reader = res.body.getReader();
        var decoder = new TextDecoder();
        var buffer = '';
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) {
              // the server ends a stream after a while: carry on from the last event
              if (controller === ctl) scheduleReconnect(1000);
              return;
            }
            buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, '\n');
            var idx;
            while ((idx = buffer.indexOf('\n\n')) >= 0) {
              onBlock(buffer.slice(0, idx));
              buffer = buffer.slice(idx + 2);
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(function () {
        if (controller !== ctl) return; // replaced on purpose
        setStatus('Reconnecting…');
        scheduleReconnect(reconnectDelay);
        reconnectDelay = Math.min(reconnectDelay * 2, 30000);
      });
  }

  if (visitorToken) {
    fetch(base + '/messages', { headers: authHeaders() })
      .then(function (res) {
        if (res.status === 401) forgetVisitor();
        return res.ok ? res.json() : { items: [], lastEventId: 0 };
      })
      .then(
        function (history) {
          (history.items || []).forEach(receive);
          if (typeof history.lastEventId === 'number') lastEventId = history.lastEventId;
          if ((history.items || []).length) conversationStarted();
        },
        function () {
          conversationStarted(); // history unreadable now: follow the stream anyway
        },
      );
  }

  window.ParleyWebChat = { widgetKey: widgetKey };
})();
