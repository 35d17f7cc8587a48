// shopbridge console. One file for every page, no framework, no build step:
// the page says which it is in <body data-page>, the strings of its
// language come in <body data-i18n>, and every value shown is text set with
// textContent (never markup), so nothing from the store can run here.
(function () {
  'use strict';

  var body = document.body;
  var strings = {};
  try { strings = JSON.parse(body.getAttribute('data-i18n') || '{}'); } catch (e) { strings = {}; }
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute('content') : '';
  var refreshMS = parseInt(body.getAttribute('data-refresh-ms'), 10) || 2000;

  // t translates key, filling {name} placeholders from vars.
  function t(key, vars) {
    var s = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
    if (vars) {
      s = s.replace(/\{(\w+)\}/g, function (m, k) { return vars[k] === undefined ? m : String(vars[k]); });
    }
    return s;
  }

  var numberFormat = window.Intl ? new Intl.NumberFormat(body.getAttribute('data-lang') || 'ru') : null;
  // num groups a count's digits the language's way (1 000 000, 1,000,000).
  function num(n) { return numberFormat && typeof n === 'number' ? numberFormat.format(n) : String(n); }

  function byTestID(id, root) { return (root || document).querySelector('[data-testid="' + id + '"]'); }

  // el builds an element: el('td', {class: 'x', 'data-testid': 'y'}, child, 'text', ...).
  function el(tag, attrs) {
    var n = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === 'text') n.textContent = v;
        else if (k === 'hidden') n.hidden = true;
        else n.setAttribute(k, v === true ? '' : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      n.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
    return n;
  }

  function setText(id, text) {
    var n = byTestID(id);
    if (n) n.textContent = text;
    return n;
  }

  // ApiError carries the daemon's reason (its error body) and status.
  function ApiError(status, reason) { this.status = status; this.message = reason; }
  ApiError.prototype = Object.create(Error.prototype);

  // api calls a JSON endpoint of the console. State-changing calls carry
  // the page's CSRF token; a 401 means the session is over.
  function api(path, opts) {
    opts = opts || {};
    var headers = { 'Accept': 'application/json' };
    if (opts.method && opts.method !== 'GET') headers['X-CSRF-Token'] = csrf;
    return fetch(path, { method: opts.method || 'GET', headers: headers, credentials: 'same-origin', cache: 'no-store' })
      .then(function (resp) {
        return resp.text().then(function (text) {
          var data = null;
          try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
          if (resp.status === 401) {
            location.assign('/admin/login?next=' + encodeURIComponent(location.pathname + location.search));
          }
          if (!resp.ok) {
            var reason = data && data.errors && data.errors[0] && data.errors[0].reason;
            throw new ApiError(resp.status, reason || ('HTTP ' + resp.status));
          }
          return data;
        });
      });
  }

  var banner = byTestID('console-error');
  function showError(msg) { if (banner) { banner.textContent = msg; banner.hidden = false; } }
  function clearError() { if (banner) { banner.hidden = true; banner.textContent = ''; } }

  function localTime(tm) { return tm ? tm.local : t('common.never'); }

  // age formats a duration in seconds the short way: 42 s, 5 min, 3 h, 2 d.
  function age(sec) {
    sec = Math.max(0, Math.round(sec));
    if (sec < 60) return t('age.s', { n: sec });
    if (sec < 3600) return t('age.m', { n: Math.floor(sec / 60) });
    if (sec < 86400) return t('age.h', { n: Math.floor(sec / 3600) });
    return t('age.d', { n: Math.floor(sec / 86400) });
  }

  // ago is how long before the server's now a time was (both from the
  // server's clock, so the browser's clock does not matter).
  function ago(tm, now) {
    if (!tm || !now) return '';
    var sec = (Date.parse(now.at) - Date.parse(tm.at)) / 1000;
    if (!(sec >= 0)) sec = 0;
    if (sec < 5) return t('ago.now');
    if (sec < 60) return t('ago.s', { n: Math.round(sec) });
    if (sec < 3600) return t('ago.m', { n: Math.floor(sec / 60) });
    if (sec < 86400) return t('ago.h', { n: Math.floor(sec / 3600) });
    return t('ago.d', { n: Math.floor(sec / 86400) });
  }

  function whenAgo(tm, now) { return tm ? tm.local + ' (' + ago(tm, now) + ')' : t('common.never'); }

  // Language links keep the page's own query (filters, the open bill).
  function updateLangLinks() {
    ['ru', 'en'].forEach(function (lang) {
      var a = byTestID('lang-' + lang);
      if (!a) return;
      var q = new URLSearchParams(location.search);
      q.set('lang', lang);
      a.setAttribute('href', '?' + q.toString());
    });
  }
  updateLangLinks();

  function setQuery(params) {
    var q = params.toString();
    history.replaceState(null, '', location.pathname + (q ? '?' + q : ''));
    updateLangLinks();
  }

  // syncRows makes tbody hold one row per item, in order, reusing rows by
  // key so that a refresh never takes a button away from under the mouse.
  function syncRows(tbody, items, key, make, update) {
    var old = {};
    Array.prototype.forEach.call(tbody.children, function (tr) { old[tr.getAttribute('data-key')] = tr; });
    var prev = null;
    items.forEach(function (item) {
      var k = key(item);
      var tr = old[k];
      if (tr) delete old[k]; else { tr = make(item); tr.setAttribute('data-key', k); }
      update(tr, item);
      var want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    });
    Object.keys(old).forEach(function (k) { tbody.removeChild(old[k]); });
  }

  function retryButton(eventID, testid, done) {
    var b = el('button', { type: 'button', 'data-testid': testid, text: t('common.retry') });
    b.addEventListener('click', function () {
      b.disabled = true;
      b.textContent = t('common.retrying');
      api('/admin/api/outbox/' + encodeURIComponent(eventID) + '/retry', { method: 'POST' })
        .then(function () { clearError(); done(); })
        .catch(function (err) {
          showError(t('common.retry_failed', { reason: err.message }));
          b.disabled = false;
          b.textContent = t('common.retry');
        });
    });
    return b;
  }

  // queuedRow fills a row of a waiting receipt: event id (to the journal),
  // received, age, register, bill, attempts, the last attempt's error.
  function queuedRow(r) {
    return el('tr', { 'data-testid': 'outbox-row', 'data-event-id': r.event_id },
      el('td', { class: 'mono' }, el('a', { href: '/admin/journal?text=' + encodeURIComponent(r.event_id), text: r.event_id })),
      el('td'), el('td', { class: 'num' }), el('td', { class: 'mono' }), el('td'), el('td', { class: 'num' }),
      el('td', { class: 'mono', 'data-testid': 'outbox-error' }));
  }
  function updateQueuedRow(tr, r) {
    var c = tr.children;
    c[1].textContent = localTime(r.received_at);
    c[2].textContent = age(r.age_s);
    c[3].textContent = r.device || '—';
    c[4].textContent = '';
    if (r.bill_id) c[4].appendChild(el('a', { href: '/admin/bills?bill=' + encodeURIComponent(r.bill_id), text: r.bill_id }));
    c[5].textContent = r.attempts;
    c[6].textContent = r.last_error || (r.attempts ? '' : t('overview.outbox_not_tried'));
  }

  // ---- Outbox ------------------------------------------------------------

  function outboxPage() {
    var list = byTestID('outbox-list').tBodies[0];
    var next = byTestID('outbox-next');
    var after = 0;
    function load() {
      next.hidden = true;
      api('/admin/api/console/outbox?limit=200' + (after ? '&after=' + after : '')).then(function (p) {
        clearError();
        setText('outbox-total', t('outbox.total', { n: num(p.total) })).setAttribute('data-count', String(p.total));
        p.receipts.forEach(function (r) { var tr = queuedRow(r); updateQueuedRow(tr, r); list.appendChild(tr); });
        byTestID('outbox-empty').hidden = list.children.length > 0;
        after = p.next;
        next.hidden = !p.next;
      }).catch(function (err) { showError(err.message); });
    }
    next.addEventListener('click', load);
    load();
  }

  // ---- Overview ----------------------------------------------------------

  function overviewPage() {
    var refreshes = 0;
    var timer = null;
    var every = document.querySelector('.refresh-every');
    if (every) every.textContent = t('overview.refresh_every', { n: refreshMS / 1000 });

    function schedule(ms) {
      clearTimeout(timer);
      timer = setTimeout(refresh, ms);
    }

    function refresh() {
      api('/admin/api/overview').then(function (o) {
        clearError();
        render(o);
        refreshes++;
        var u = setText('overview-updated', o.now.local);
        u.setAttribute('data-refreshes', String(refreshes));
      }).catch(function (err) {
        showError(t('common.refresh_failed', { reason: err.message }));
      }).then(function () { schedule(refreshMS); });
    }

    // The scheduled backups: the last good one, a warning when it is too
    // old, the last failure while there is one.
    function renderBackup(o) {
      var b = o.backup || {};
      var text;
      if (!b.dir || b.dir === 'none') {
        text = t('backup.off');
      } else {
        text = b.last_ok_at ? whenAgo(b.last_ok_at, o.now) + ' · ' + (b.last_ok_bytes / 1048576).toFixed(1) + ' MiB · ' + b.last_ok_file : t('backup.none_yet');
        if (b.stale) text = t('backup.stale') + ' ' + text;
        if (b.last_error) text += ' · ' + t('backup.failed') + (b.last_error_at ? ' (' + whenAgo(b.last_error_at, o.now) + ')' : '') + ': ' + b.last_error;
      }
      setText('backup-state', text).setAttribute('data-stale', b.stale ? 'true' : 'false');
    }

    // The PC's clock against the CRM's: where it is, and an alert while it
    // is wrong (date=today lists and every time shown depend on it).
    function renderClock(o) {
      var c = o.clock, text;
      if (!c) {
        text = o.upstream === 'none' ? '—' : t('clock.not_measured');
      } else {
        var sec = Math.abs(c.skew_seconds), amount;
        if (sec >= 2 * 86400) amount = t('clock.d', { n: Math.round(sec / 86400) });
        else if (sec >= 2 * 3600) amount = t('clock.h', { n: Math.round(sec / 3600) });
        else if (sec >= 120) amount = t('clock.m', { n: Math.round(sec / 60) });
        else amount = t('clock.s', { n: Math.round(sec) });
        text = c.skew_seconds === 0 ? t('clock.in_step') : t(c.skew_seconds > 0 ? 'clock.behind' : 'clock.ahead', { amount: amount });
        var ca = byTestID('clock-alert');
        ca.querySelector('.clock-skew').textContent = text;
        ca.setAttribute('data-ok', String(c.ok));
        text += ' (' + t('clock.measured', { ago: ago(c.measured_at, o.now) }) + ')';
      }
      byTestID('clock-alert').hidden = !c || c.ok;
      setText('clock-state', text).setAttribute('data-ok', c ? String(c.ok) : '');
    }

    function render(o) {
      renderClock(o);
      var st = setText('upstream-state', t('upstream.' + o.upstream));
      st.setAttribute('data-state', o.upstream);
      setText('upstream-since', o.upstream === 'none' ? '—' : whenAgo(o.upstream_since, o.now));
      setText('last-pull', whenAgo(o.last_pull_at, o.now));
      setText('last-push', whenAgo(o.last_push_at, o.now));
      var le = byTestID('last-error');
      le.textContent = o.last_error ? t('overview.last_error') + (o.last_error_at ? ' (' + whenAgo(o.last_error_at, o.now) + ')' : '') + ': ' + o.last_error : '';
      le.hidden = !o.last_error;

      setText('outbox-count', o.outbox).setAttribute('data-count', String(o.outbox));
      setText('outbox-oldest', o.outbox_oldest ? o.outbox_oldest.local + ' (' + age(o.outbox_oldest_age_s) + ')' : t('common.none'));
      setText('parked-count', o.parked).setAttribute('data-count', String(o.parked));
      setText('bills-total', num(o.bills));
      setText('bills-open', num(o.open_bills));
      setText('receipts-total', num(o.receipts));
      setText('journal-total', num(o.journal_entries));
      renderBackup(o);
      var mdns = (o.mdns && o.mdns.state) || 'off';
      setText('mdns-state', strings['mdns.' + mdns] ? t('mdns.' + mdns) : mdns);
      setText('instance-name', o.name || '—');
      setText('version', o.version);
      setText('instance-id', o.instance_id);
      setText('timezone', o.timezone);

      var sa = byTestID('store-alert');
      var degraded = o.store && o.store.state === 'degraded';
      sa.hidden = !degraded;
      sa.setAttribute('data-state', (o.store && o.store.state) || '');
      sa.querySelector('.store-reason').textContent = degraded ? (strings['store.' + o.store.reason] ? t('store.' + o.store.reason) : o.store.reason) : '';
      sa.querySelector('.store-since').textContent = degraded ? whenAgo(o.store.since, o.now) : '';
      // What to do depends on the reason: free space only helps a full disk.
      var hintKey = degraded && strings['store_hint.' + o.store.reason] ? 'store_hint.' + o.store.reason : 'overview.store_degraded_hint';
      sa.querySelector('.store-hint').textContent = strings[hintKey] ? t(hintKey) : '';

      var dup = byTestID('duplicate-alert');
      var dups = o.duplicates || [];
      dup.hidden = dups.length === 0;
      dup.setAttribute('data-count', String(dups.length));
      syncRows(dup.querySelector('ul'), dups, function (d) { return d.name; }, function (d) {
        return el('li', { 'data-testid': 'duplicate-row', 'data-name': d.name });
      }, function (li, d) {
        li.textContent = t(d.reason === 'same_store' ? 'overview.duplicate_store' : 'overview.duplicate_upstream', {
          name: d.name, addrs: d.addresses.join(', '), ours: (o.own_addresses || []).join(', ') || '—'
        });
      });

      var alert = byTestID('paid-twice-alert');
      alert.hidden = o.paid_twice_count === 0;
      alert.setAttribute('data-count', String(o.paid_twice_count));
      alert.querySelector('.alert-title').textContent = t('overview.paid_twice', { n: o.paid_twice_count });
      syncRows(alert.querySelector('ul'), o.paid_twice, function (b) { return b.id; }, function (b) {
        return el('li', { 'data-testid': 'paid-twice-row', 'data-id': b.id }, el('a', { href: '/admin/bills?bill=' + encodeURIComponent(b.id) }));
      }, function (li, b) {
        li.firstChild.textContent = b.number + ' (id ' + b.id + ') · ' + b.date + ' · ' + b.summ + (b.customername ? ' · ' + b.customername : '');
      });

      syncRows(byTestID('outbox-list').tBodies[0], o.outbox_receipts, function (r) { return r.event_id; }, queuedRow, updateQueuedRow);
      byTestID('outbox-empty').hidden = o.outbox > 0;
      var omore = byTestID('outbox-more');
      omore.hidden = o.outbox <= o.outbox_receipts.length;
      omore.firstChild.textContent = t('overview.outbox_more', { shown: o.outbox_receipts.length, n: num(o.outbox) });

      var parked = byTestID('parked-list').tBodies[0];
      syncRows(parked, o.parked_receipts, function (r) { return r.event_id; }, function (r) {
        var tr = el('tr', { 'data-testid': 'parked-row', 'data-event-id': r.event_id },
          el('td', { class: 'mono' }, el('a', { href: '/admin/journal?text=' + encodeURIComponent(r.event_id), text: r.event_id })),
          el('td'), el('td'), el('td'), el('td', { class: 'num' }), el('td', { class: 'mono', 'data-testid': 'parked-answer' }),
          el('td', null, retryButton(r.event_id, 'parked-retry', function () {
            if (tr.parentNode) tr.parentNode.removeChild(tr);
            schedule(0);
          })));
        return tr;
      }, function (tr, r) {
        var c = tr.children;
        c[1].textContent = '';
        if (r.bill_id) c[1].appendChild(el('a', { href: '/admin/bills?bill=' + encodeURIComponent(r.bill_id), text: r.bill_id }));
        c[2].textContent = r.type || '';
        c[3].textContent = localTime(r.received_at);
        c[4].textContent = r.attempts;
        c[5].textContent = r.answer;
      });
      byTestID('parked-empty').hidden = o.parked > 0;
      var more = byTestID('parked-more');
      more.hidden = o.parked <= o.parked_receipts.length;
      more.textContent = t('overview.parked_more', { shown: o.parked_receipts.length, n: o.parked });

      var terms = byTestID('terminals-list').tBodies[0];
      syncRows(terms, o.terminals, function (x) { return x.device || x.address; }, function (x) {
        return el('tr', { 'data-testid': 'terminal-row', 'data-device': x.device, 'data-address': x.address },
          el('td', { class: 'mono' }), el('td', { class: 'mono' }), el('td'), el('td'));
      }, function (tr, x) {
        var c = tr.children;
        c[0].textContent = x.device || '—';
        c[1].textContent = x.address;
        c[2].textContent = whenAgo(x.last_seen, o.now);
        c[3].textContent = x.last_kind || '';
      });
      byTestID('terminals-empty').hidden = o.terminals.length > 0;
    }

    refresh();
  }

  // ---- Journal -----------------------------------------------------------

  function journalPage() {
    var form = byTestID('journal-filters');
    var table = byTestID('journal-rows');
    var status = byTestID('journal-status');
    var moreBtn = byTestID('journal-more');
    var contBtn = byTestID('journal-continue');
    var emptyMsg = byTestID('journal-empty');
    var live = byTestID('journal-live');
    var termSel = byTestID('journal-filter-terminal');
    var polls = byTestID('journal-polls');
    var limit = 50;
    // A page the scan budget cut short is followed this many times by
    // itself (each request reads at most 16 MiB of journal) before the
    // operator is asked to go on.
    var autoHops = 20;
    var generation = 0; // a new search makes answers of older ones stale
    var cursor = 0;     // next page: entries below this sequence number
    var newest = 0;     // live tail: entries above this one
    var shown = 0;
    var scanned = 0;
    var total = 0;
    var tailTimer = null;

    function filters() {
      var q = new URLSearchParams();
      ['kind', 'terminal', 'since', 'until', 'text'].forEach(function (name) {
        var v = form.elements[name].value.trim();
        if (v) q.set(name, v);
      });
      // The daemon's own polls of the CRM are hidden unless asked for
      // (or a CRM kind is chosen): the registers' exchanges come first.
      if (polls.checked) q.set('polls', 'show');
      else if (!/^UPSTREAM_/.test(q.get('kind') || '')) q.set('polls', 'hide');
      return q;
    }

    // shownQuery is the page's URL query: polls=hide is the default there.
    function shownQuery() {
      var q = filters();
      if (q.get('polls') === 'hide') q.delete('polls');
      return q;
    }

    function describeAnswer(r) {
      var parts = [r.status];
      if (r.source) parts.push(strings['journal.' + r.source] ? t('journal.' + r.source) : r.source);
      parts.push(t('journal.ms', { n: r.duration_ms.toFixed(1) }));
      return parts.join(' · ');
    }

    function dataCell(r, which) {
      var preview = which === 'request' ? r.request_preview : r.response_preview;
      var size = which === 'request' ? r.request_size : r.response_size;
      var summary = el('summary');
      if (which === 'request') summary.appendChild(el('span', { class: 'mono', text: r.method + ' ' + r.path + (r.query ? '?' + r.query : '') + ' ' }));
      summary.appendChild(el('span', { class: 'preview', text: size ? preview : t('journal.no_body') }));
      if (!size) {
        var td = el('td');
        while (summary.firstChild) td.appendChild(summary.firstChild);
        return td;
      }
      var d = el('details', { 'data-testid': 'journal-' + which }, summary, el('pre'));
      d.addEventListener('toggle', function () { if (d.open) loadEntry(r.seq, d.closest('tbody')); });
      return el('td', null, d);
    }

    function entryRows(r) {
      var tb = el('tbody', { 'data-testid': 'journal-row', 'data-seq': r.seq, 'data-kind': r.kind });
      var client = el('td', { class: 'mono' }, r.client, r.device ? el('br') : null, r.device || null);
      if (!r.method) { // a note: a state change or a remark
        tb.appendChild(el('tr', null, el('td', { text: r.time.local }), client,
          el('td', { text: r.kind }), el('td', { class: 'mono', text: r.note })));
        return tb;
      }
      var ans = el('td', null, t('journal.response') + ' (' + r.kind + ')', el('br'),
        el('span', { class: r.status >= 400 || r.status === 0 ? 'status-bad' : 'muted', text: describeAnswer(r) }));
      var resp = dataCell(r, 'response');
      if (r.note) resp.appendChild(el('div', { class: 'muted mono', text: r.note }));
      if (r.repeats) {
        resp.appendChild(el('div', { class: 'repeats', 'data-testid': 'journal-repeats', 'data-repeats': r.repeats,
          text: t('journal.repeats', { n: num(r.repeats), last: r.last_time ? r.last_time.local : '' }) }));
      }
      tb.appendChild(el('tr', { class: 'resp' }, el('td', { text: r.time.local }), client, ans, resp));
      tb.appendChild(el('tr', { class: 'req' }, el('td', { text: r.time.local }), client.cloneNode(true),
        el('td', { text: t('journal.request') + ' (' + r.kind + ')' }), dataCell(r, 'request')));
      return tb;
    }

    function loadEntry(seq, tb) {
      if (!tb || tb.getAttribute('data-loaded')) return;
      tb.setAttribute('data-loaded', 'loading');
      api('/admin/api/journal/entry/' + seq).then(function (e) {
        tb.setAttribute('data-loaded', 'yes');
        var req = byTestID('journal-request', tb);
        var resp = byTestID('journal-response', tb);
        if (req) req.querySelector('pre').textContent = e.request_pretty;
        if (resp) resp.querySelector('pre').textContent = e.response_pretty;
      }).catch(function (err) {
        tb.removeAttribute('data-loaded');
        showError(err.message);
      });
    }

    function renderStatus(done, full) {
      if (done) status.textContent = filters().toString() ? t('journal.status_end', { shown: num(shown) }) : t('journal.status', { shown: num(shown), total: num(total) });
      else if (full) status.textContent = t('journal.status', { shown: num(shown), total: num(total) });
      else status.textContent = t('journal.status_paused', { scanned: num(scanned), shown: num(shown) });
    }

    // page loads entries below cursor; a page the scan budget cut short
    // is followed up to hops times before the operator is asked.
    function page(hops) {
      var gen = generation;
      var q = filters();
      q.set('limit', String(limit));
      if (cursor) q.set('before', String(cursor));
      moreBtn.hidden = true;
      contBtn.hidden = true;
      return api('/admin/api/journal/page?' + q.toString()).then(function (p) {
        if (gen !== generation) return;
        clearError();
        if (!newest) newest = p.newest;
        total = p.total;
        scanned += p.scanned;
        var frag = document.createDocumentFragment();
        p.rows.forEach(function (r) { frag.appendChild(entryRows(r)); shown++; });
        table.appendChild(frag);
        emptyMsg.hidden = shown > 0 || !p.done;
        cursor = p.next;
        var full = p.rows.length >= limit;
        if (p.done) {
          renderStatus(true, full);
        } else if (full) {
          moreBtn.hidden = false;
          renderStatus(false, true);
        } else if (hops > 0) {
          status.textContent = t('journal.status_scanned', { scanned: num(scanned), shown: num(shown) });
          return page(hops - 1);
        } else {
          contBtn.hidden = false;
          renderStatus(false, false);
        }
      }).catch(function (err) { if (gen === generation) showError(err.message); });
    }

    function tail() {
      clearTimeout(tailTimer);
      if (!live.checked || !newest || form.elements.until.value) {
        tailTimer = setTimeout(tail, refreshMS);
        return;
      }
      var gen = generation;
      var q = filters();
      q.set('after', String(newest));
      q.set('limit', '200');
      api('/admin/api/journal/page?' + q.toString()).then(function (p) {
        if (gen !== generation) return;
        clearError();
        newest = Math.max(newest, p.newest);
        total = p.total;
        var frag = document.createDocumentFragment();
        p.rows.forEach(function (r) { frag.appendChild(entryRows(r)); shown++; });
        table.insertBefore(frag, table.tBodies[0] || null);
        if (p.rows.length) emptyMsg.hidden = true;
        if (!p.done) byTestID('journal-gap').hidden = false;
      }).catch(function (err) {
        showError(t('common.refresh_failed', { reason: err.message }));
      }).then(function () { tailTimer = setTimeout(tail, refreshMS); });
    }

    function search() {
      generation++;
      cursor = 0; newest = 0; shown = 0; scanned = 0;
      Array.prototype.slice.call(table.tBodies).forEach(function (tb) { table.removeChild(tb); });
      byTestID('journal-gap').hidden = true;
      emptyMsg.hidden = true;
      status.textContent = t('common.loading');
      setQuery(shownQuery());
      return page(autoHops);
    }

    form.addEventListener('submit', function (ev) { ev.preventDefault(); search(); });
    ['kind', 'terminal', 'since', 'until', 'polls'].forEach(function (name) {
      form.elements[name].addEventListener('change', search);
    });
    moreBtn.addEventListener('click', function () { page(autoHops); });
    contBtn.addEventListener('click', function () { page(autoHops); });

    // The terminal choices are the registers seen; asked for after the
    // first page, which matters more.
    function loadTerminals() {
      return api('/admin/api/overview').then(function (o) {
        var current = termSel.getAttribute('data-value') || '';
        o.terminals.forEach(function (x) {
          var v = x.device || x.address;
          if (v === current) return;
          termSel.appendChild(el('option', { value: v, text: x.device ? x.device + ' (' + x.address + ')' : x.address }));
        });
      }).catch(function () { /* the filter still takes the value from the URL */ });
    }

    search().then(loadTerminals);
    tailTimer = setTimeout(tail, refreshMS);
  }

  // ---- Bills and receipts ------------------------------------------------

  function billsPage() {
    var form = byTestID('bills-filters');
    var dateIn = byTestID('bills-date');
    var stateSel = byTestID('bills-state');
    var searchIn = byTestID('bills-search');
    var list = byTestID('bills-list').tBodies[0];
    var moreBtn = byTestID('bills-more');
    var emptyMsg = byTestID('bills-empty');
    var heading = byTestID('bills-heading');
    var detail = byTestID('bill-detail');
    var split = document.querySelector('.split');
    var after = '';
    var generation = 0;
    var openID = '';

    var viewIn = byTestID('bills-view');
    var openBtn = byTestID('bills-view-open');
    var todayBtn = byTestID('bills-view-today');
    // The page opens on the open bills (what a register's list answers
    // now); a date or a search switches away from them.
    function openView() { return viewIn.value === 'open' && !searchIn.value.trim(); }

    function badge(cls, text) { return el('span', { class: 'badge ' + cls, text: text }); }

    function billRow(b) {
      var tr = el('tr', { class: 'selectable', 'data-testid': 'bill-row', 'data-id': b.id, 'data-state': b.state },
        el('td', { text: b.date }), el('td', { class: 'mono', text: b.number }), el('td', { class: 'mono', text: b.id }),
        el('td', { class: 'num', text: b.summ }), el('td', { text: b.customername }),
        el('td', null, badge(b.state, t('state.' + b.state))));
      if (b.id === openID) tr.classList.add('selected');
      tr.addEventListener('click', function () { openBill(b.id); });
      return tr;
    }

    function params() {
      var q = new URLSearchParams();
      var s = searchIn.value.trim();
      if (s) q.set('q', s);
      else if (openView()) q.set('view', 'open');
      else {
        q.set('date', dateIn.value || dateIn.getAttribute('data-today'));
        if (stateSel.value && stateSel.value !== 'all') q.set('state', stateSel.value);
      }
      return q;
    }

    function load(more) {
      var gen = ++generation;
      var q = params();
      if (more && after) q.set('after', after);
      else { list.textContent = ''; after = ''; }
      var shown = new URLSearchParams(q);
      if (openID) shown.set('bill', openID);
      setQuery(shown);
      moreBtn.hidden = true;
      api('/admin/api/bills?' + q.toString()).then(function (r) {
        if (gen !== generation) return;
        clearError();
        r.bills.forEach(function (b) { list.appendChild(billRow(b)); });
        after = r.next;
        moreBtn.hidden = !r.next;
        emptyMsg.hidden = list.children.length > 0;
        if (r.empty) {
          emptyMsg.setAttribute('data-reason', r.empty);
          emptyMsg.textContent = t(r.empty, { date: r.date || '', q: r.q || '', synced: r.synced_at ? r.synced_at.local : t('common.never') });
        }
        var searching = q.has('q');
        var open = r.view === 'open';
        openBtn.setAttribute('aria-pressed', String(open));
        todayBtn.setAttribute('aria-pressed', String(r.view === 'date' && r.date === dateIn.getAttribute('data-today')));
        heading.textContent = searching ? t('bills.results', { q: q.get('q') }) : open ? t('bills.open_heading', { n: num(r.open) }) : r.date;
        heading.setAttribute('data-view', r.view);
        byTestID('bills-counts').hidden = searching || open;
        if (r.counts) {
          ['all', 'open', 'settled', 'paid_twice'].forEach(function (s) {
            var chip = byTestID('bills-count-' + s);
            chip.querySelector('b').textContent = num(r.counts[s]);
            chip.setAttribute('aria-pressed', String((stateSel.value || 'all') === s));
          });
        }
      }).catch(function (err) { if (gen === generation) showError(err.message); });
    }

    function field(dl, name, value) {
      dl.appendChild(el('dt', { text: name }));
      dl.appendChild(el('dd', null, value));
    }

    function openBill(id) {
      openID = id;
      Array.prototype.forEach.call(list.children, function (tr) { tr.classList.toggle('selected', tr.getAttribute('data-id') === id); });
      var q = new URLSearchParams(location.search);
      q.set('bill', id);
      setQuery(q);
      api('/admin/api/bill/' + encodeURIComponent(id)).then(function (d) {
        if (openID !== id) return;
        clearError();
        var b = d.bill;
        detail.hidden = false;
        detail.setAttribute('data-id', b.id);
        detail.setAttribute('data-state', b.state);
        split.classList.add('open');
        detail.querySelector('.bill-title').textContent = t('col.bill') + ' ' + b.number + ' (id ' + b.id + ')';
        var dl = detail.querySelector('.bill-fields');
        dl.textContent = '';
        field(dl, t('col.date'), b.date);
        field(dl, t('col.sum'), b.summ);
        field(dl, t('col.customer'), b.customername);
        field(dl, t('col.state'), badge(b.state, t('state.' + b.state)));
        if (b.listed) field(dl, '', t('bills.listed'));
        var rows = byTestID('bill-receipts');
        rows.textContent = '';
        d.receipts.forEach(function (r) {
          var actions = el('td');
          if (r.state === 'parked') actions.appendChild(retryButton(r.event_id, 'receipt-retry', function () { openBill(id); }));
          rows.appendChild(el('tr', { 'data-testid': 'receipt-row', 'data-event-id': r.event_id, 'data-state': r.state },
            el('td', { class: 'mono' }, r.event_id, el('br'),
              el('a', { href: '/admin/journal?text=' + encodeURIComponent(r.event_id), text: t('bills.journal_link') })),
            el('td', { text: r.type + (r.settlement_method ? ' / ' + r.settlement_method : '') }),
            el('td', { text: localTime(r.received_at) }),
            el('td', null, badge(r.state, t('receipt.' + r.state)), r.delivered_at ? el('div', { class: 'muted', text: r.delivered_at.local }) : null),
            el('td', { class: 'num', text: r.attempts }),
            el('td', { class: 'mono', text: r.last_error || '' }),
            actions));
        });
        byTestID('bill-no-receipts').hidden = d.receipts.length > 0;
        byTestID('bill-body').querySelector('pre').textContent = d.body_pretty || t('bills.not_fetched');
      }).catch(function (err) { showError(err.message); });
    }

    byTestID('bill-close').addEventListener('click', function () {
      openID = '';
      detail.hidden = true;
      split.classList.remove('open');
      var q = new URLSearchParams(location.search);
      q.delete('bill');
      setQuery(q);
      Array.prototype.forEach.call(list.children, function (tr) { tr.classList.remove('selected'); });
    });
    form.addEventListener('submit', function (ev) { ev.preventDefault(); load(false); });
    dateIn.addEventListener('change', function () { searchIn.value = ''; viewIn.value = dateIn.value ? 'date' : 'open'; load(false); });
    stateSel.addEventListener('change', function () { searchIn.value = ''; viewIn.value = 'date'; load(false); });
    openBtn.addEventListener('click', function () { searchIn.value = ''; viewIn.value = 'open'; dateIn.value = ''; load(false); });
    todayBtn.addEventListener('click', function () {
      searchIn.value = ''; viewIn.value = 'date'; dateIn.value = dateIn.getAttribute('data-today'); load(false);
    });
    Array.prototype.forEach.call(document.querySelectorAll('.chip[data-state]'), function (chip) {
      chip.addEventListener('click', function () { stateSel.value = chip.getAttribute('data-state'); searchIn.value = ''; viewIn.value = 'date'; load(false); });
    });
    moreBtn.addEventListener('click', function () { load(true); });

    var start = new URLSearchParams(location.search).get('bill');
    if (start) openBill(start);
    load(false);
  }

  var pages = { overview: overviewPage, journal: journalPage, bills: billsPage, outbox: outboxPage };
  var run = pages[body.getAttribute('data-page')];
  if (run) run();
})();
