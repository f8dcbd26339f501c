// The log of one expanded run: the tail first, older entries on demand, and
// live entries from the WebSocket while the run is active. It follows the
// newest entry unless the reader has scrolled up.

import {el, setText} from './dom.js';
import {formatLogTime, isActive} from './format.js';

const PAGE_SIZE = 200;
const MAX_ENTRIES_SHOWN = 5000;
const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error']);
const SOURCE_LABELS = {user: 'you', host: 'host'};
const MAX_MESSAGE_BYTES = 64 * 1024;

export class LogView {
  constructor(run, {api, connection, scheduler, notify}) {
    this.run = run;
    this.api = api;
    this.connection = connection;
    this.scheduler = scheduler;
    this.notify = notify;
    this.firstSeq = 0;  // seq of the oldest entry shown (0: none yet)
    this.lastSeq = 0;   // seq of the newest entry shown
    this.follow = true;
    this.queued = [];   // live entries waiting for the next frame
    this.subscribed = false;
    this.closed = false;

    this.olderButton = el('button', {
      type: 'button', class: 'ghost small', 'data-testid': 'load-older-logs', hidden: true,
      onclick: () => this.loadOlder(),
    }, 'Load older entries');
    this.list = el('ol', {class: 'log-entries', 'data-testid': 'log-entries'});
    this.empty = el('p', {class: 'log-empty muted', 'data-testid': 'log-empty'}, 'Loading the log…');
    this.scroller = el('div', {
      class: 'log-scroller', tabindex: '0', role: 'log', 'aria-live': 'off',
      'aria-label': `Log of ${run.agentName} run`, onscroll: () => this.onScroll(),
    }, this.olderButton, this.list, this.empty);
    this.jumpButton = el('button', {
      type: 'button', class: 'jump small', 'data-testid': 'jump-to-latest', hidden: true,
      onclick: () => this.jumpToLatest(),
    }, 'New entries ↓');
    this.messageInput = el('textarea', {
      class: 'message-input', rows: '1', 'data-testid': 'message-input', maxlength: String(MAX_MESSAGE_BYTES),
      placeholder: 'Message the agent (Enter to send, Shift+Enter for a new line)',
      'aria-label': `Message to the ${run.agentName} run`,
      onkeydown: (event) => {
        if (event.key === 'Enter' && !event.shiftKey) {
          event.preventDefault();
          this.sendMessage();
        }
      },
    });
    this.sendButton = el('button', {type: 'submit', class: 'small', 'data-testid': 'send-message'}, 'Send');
    this.messageForm = el('form', {
      class: 'message-form', 'data-testid': 'message-form', hidden: true,
      onsubmit: (event) => {
        event.preventDefault();
        this.sendMessage();
      },
    }, this.messageInput, this.sendButton);
    this.element = el('div', {class: 'log-view', 'data-testid': 'log-view'},
      this.scroller, this.jumpButton, this.messageForm);
    this.renderMessageForm();
  }

  // Only an active run whose agent reads messages gets the box.
  renderMessageForm() {
    this.messageForm.hidden = !(this.run.acceptsMessages && isActive(this.run));
  }

  async sendMessage() {
    const text = this.messageInput.value;
    if (text.trim() === '' || this.sending) return;
    if (new TextEncoder().encode(text).length > MAX_MESSAGE_BYTES) {
      this.notify('The message is over 64 KiB; shorten it.');
      return;
    }
    this.sending = true;
    this.sendButton.disabled = true;
    try {
      await this.api.sendMessage(this.run.instanceId, text);
      this.messageInput.value = '';
    } catch (error) {
      this.notify(`Could not send the message: ${error.message}`);
    } finally {
      this.sending = false;
      this.sendButton.disabled = false;
    }
  }

  // Shows the last PAGE_SIZE entries, then keeps up with new ones.
  open() {
    const tailStart = Math.max(0, (this.run.logCount || 0) - PAGE_SIZE);
    this.firstSeq = tailStart + 1;
    this.lastSeq = tailStart;
    this.updateOlderButton();
    if (isActive(this.run)) {
      this.subscribed = true;
      this.connection.subscribe(this.run.instanceId, this.lastSeq);
    } else {
      this.fetchRest();
    }
  }

  close() {
    this.closed = true;
    if (this.subscribed) this.connection.unsubscribe(this.run.instanceId);
    this.subscribed = false;
  }

  // Where a (re)subscription should start: right after what is shown.
  get resumeAfter() {
    return this.lastSeq;
  }

  runChanged(run) {
    this.run = run;
    // A finished run's last entries may still be in flight on the socket, so
    // the subscription stays until the view closes; an empty log says so.
    if (!isActive(run) && !this.subscribed && this.lastSeq < (run.logCount || 0)) this.fetchRest();
    this.renderEmpty();
    this.renderMessageForm();
  }

  // For a finished run: read the rest of the log over REST.
  async fetchRest() {
    if (this.fetching) return;
    this.fetching = true;
    try {
      for (;;) {
        const page = await this.api.logs(this.run.instanceId, this.lastSeq, 1000);
        if (this.closed) return;
        this.appendNow(page.entries || []);
        if (page.complete || !page.entries || page.entries.length === 0) break;
      }
    } catch (error) {
      this.notify(`Could not load the log: ${error.message}`);
    } finally {
      this.fetching = false;
      this.renderEmpty();
    }
  }

  // Live entries from the WebSocket; applied in the next frame.
  receive(entries) {
    this.queued.push(...entries);
    this.scheduler.schedule(this, () => {
      const batch = this.queued;
      this.queued = [];
      this.appendNow(batch);
      this.renderEmpty();
    });
  }

  appendNow(entries) {
    const fresh = entries.filter((entry) => entry.seq > this.lastSeq);
    if (fresh.length === 0) return;
    const wasAtBottom = this.follow;
    const fragment = document.createDocumentFragment();
    for (const entry of fresh) fragment.append(renderEntry(entry));
    this.list.append(fragment);
    this.lastSeq = fresh[fresh.length - 1].seq;
    if (this.firstSeq === 0) this.firstSeq = fresh[0].seq;
    this.trimOldest();
    if (wasAtBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
    else this.jumpButton.hidden = false;
  }

  // Keeps the DOM bounded for chatty runs; the dropped ones can be loaded again.
  trimOldest() {
    let excess = this.list.childElementCount - MAX_ENTRIES_SHOWN;
    while (excess-- > 0) this.list.firstElementChild.remove();
    const first = this.list.firstElementChild;
    if (first) this.firstSeq = Number(first.dataset.seq);
    this.updateOlderButton();
  }

  async loadOlder() {
    if (this.firstSeq <= 1) return;
    const after = Math.max(0, this.firstSeq - 1 - PAGE_SIZE);
    const limit = this.firstSeq - 1 - after;
    this.olderButton.disabled = true;
    try {
      const page = await this.api.logs(this.run.instanceId, after, limit);
      const older = (page.entries || []).filter((entry) => entry.seq < this.firstSeq);
      const heightBefore = this.scroller.scrollHeight;
      const fragment = document.createDocumentFragment();
      for (const entry of older) fragment.append(renderEntry(entry));
      this.list.prepend(fragment);
      this.firstSeq = older.length > 0 ? older[0].seq : after + 1;
      // Keep what the reader was looking at in place.
      this.scroller.scrollTop += this.scroller.scrollHeight - heightBefore;
    } catch (error) {
      this.notify(`Could not load older entries: ${error.message}`);
    } finally {
      this.olderButton.disabled = false;
      this.updateOlderButton();
    }
  }

  updateOlderButton() {
    this.olderButton.hidden = this.firstSeq <= 1;
    if (!this.olderButton.hidden) {
      setText(this.olderButton, `Load older entries (${this.firstSeq - 1} before)`);
    }
  }

  renderEmpty() {
    const none = this.list.childElementCount === 0;
    this.empty.hidden = !none;
    if (!none) return;
    if (isActive(this.run)) setText(this.empty, 'Waiting for the agent to write to its log…');
    else if (!this.fetching) setText(this.empty, 'This run wrote nothing to its log.');
  }

  onScroll() {
    const {scrollTop, scrollHeight, clientHeight} = this.scroller;
    this.follow = scrollTop + clientHeight >= scrollHeight - 8;
    if (this.follow) this.jumpButton.hidden = true;
  }

  jumpToLatest() {
    this.follow = true;
    this.jumpButton.hidden = true;
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.scroller.focus();
  }
}

function renderEntry(entry) {
  const level = LEVELS.has(entry.level) ? entry.level : 'info';
  const source = SOURCE_LABELS[entry.source] ? entry.source : 'agent';
  return el('li', {
    class: `log-entry level-${level} source-${source}`, 'data-seq': entry.seq, 'data-testid': 'log-entry',
    'data-source': source,
  },
  el('time', {class: 'log-time', datetime: entry.ts, title: entry.ts}, formatLogTime(entry.ts)),
  el('span', {class: 'log-level', title: source === 'agent' ? level : `${level}, from the ${source === 'user' ? 'user' : 'host'}`},
    SOURCE_LABELS[source] || level),
  el('span', {class: 'log-message'}, entry.message));
}
