/*
 * Parley web chat widget. Embed on any site:
 *
 *   <script src="https://YOUR-PARLEY-HOST/webchat/widget.js" data-widget-key="wc_..." async></script>
 *
 * Attributes: data-widget-key (required); data-mode "bubble" (default: a button in the corner
 * opens the chat) or "inline" (fills data-container); data-container (CSS selector, inline
 * mode); data-title (header text); data-api (Parley base URL; default: where this script came from).
 *
 * The visitor is anonymous: a random id kept in localStorage. Messages are POSTed with a
 * client id (a retry is recorded once); replies arrive over Server-Sent Events, resumed after
 * a drop from the last event id. Plain ES2019, no build step, no dependencies.
 */
/* global window, document, localStorage, EventSource, fetch, setTimeout, clearTimeout, URL, console */
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

  // ---- anonymous visitor id ----

  function randomId(n) {
    var alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
    var bytes = new Uint8Array(n);
    window.crypto.getRandomValues(bytes);
    var out = '';
    for (var i = 0; i < n; i++) out += alphabet[bytes[i] & 63];
    return out;
  }

  var storageKey = 'parley.webchat.visitor.' + widgetKey;
  var visitorId;
  try {
    visitorId = localStorage.getItem(storageKey);
    if (!visitorId || !/^v_[A-Za-z0-9_-]{16,64}$/.test(visitorId)) {
      visitorId = 'v_' + randomId(24);
      localStorage.setItem(storageKey, visitorId);
    }
  } catch {
    // storage blocked (privacy mode, sandboxed frame): a visitor for this page view only
    visitorId = visitorId || 'v_' + randomId(24);
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
    '.parley-wc-send:disabled{opacity:.5;cursor:default}';

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

  /** A message from the server (history or stream); idempotent. */
  function receive(m) {
    if (!m || typeof m.id !== 'string' || byId[m.id]) return;
    var node = m.clientMessageId ? byClientId[m.clientMessageId] : undefined;
    if (node) {
      node.setAttribute('data-state', 'delivered');
      node.setAttribute('data-seq', String(m.seq));
    } else {
      node = bubble(m.direction, m.text);
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

  function post(text, clientMessageId, node, attempt) {
    fetch(base + '/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ visitorId: visitorId, text: text, clientMessageId: clientMessageId }),
    })
      .then(function (res) {
        if (res.status === 202) {
          if (node.getAttribute('data-state') === 'sending') node.setAttribute('data-state', 'sent');
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
        post(text, clientMessageId, node, attempt + 1);
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
    var clientMessageId = 'c_' + Date.now().toString(36) + '_' + randomId(12);
    var node = bubble('inbound', text);
    node.setAttribute('data-state', 'sending');
    byClientId[clientMessageId] = node;
    list.insertBefore(node, typing.parentNode === list ? typing : null);
    showTyping(true);
    post(text, clientMessageId, node, 0);
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

  // ---- the stream ----

  var lastEventId = 0;
  var source;
  var reconnectTimer;
  var reconnectDelay = 1000;

  function setStatus(text) {
    status.textContent = text || '';
    status.hidden = !text;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    var url = base + '/stream?visitorId=' + encodeURIComponent(visitorId) + '&lastEventId=' + lastEventId;
    source = new EventSource(url);
    source.onopen = function () {
      reconnectDelay = 1000;
      setStatus('');
    };
    source.onmessage = function (e) {
      if (e.lastEventId && /^\d+$/.test(e.lastEventId)) lastEventId = Number(e.lastEventId);
      try {
        receive(JSON.parse(e.data));
      } catch (err) {
        console.error('[parley] web chat: bad event', err);
      }
    };
    source.onerror = function () {
      setStatus('Reconnecting…');
      // CONNECTING: the browser retries by itself and sends Last-Event-ID; CLOSED: we start over
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        reconnectTimer = setTimeout(connect, reconnectDelay);
        reconnectDelay = Math.min(reconnectDelay * 2, 30000);
      }
    };
  }

  fetch(base + '/messages?visitorId=' + encodeURIComponent(visitorId))
    .then(function (res) {
      return res.ok ? res.json() : { items: [], lastEventId: 0 };
    })
    .then(
      function (history) {
        (history.items || []).forEach(receive);
        if (typeof history.lastEventId === 'number') lastEventId = history.lastEventId;
      },
      function () {},
    )
    .then(connect);

  window.ParleyWebChat = { visitorId: visitorId, widgetKey: widgetKey };
})();
