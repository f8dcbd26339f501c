// Entry point: token, routing, the Execution menu, the connection indicator,
// and wiring the REST client and the WebSocket to the Background Agents view.

import {BackgroundAgentsView} from './agents-view.js';
import {Api} from './api.js';
import {SchedulesView, WebhooksView} from './automation-views.js';
import {el, FrameScheduler} from './dom.js';
import {LiveConnection} from './socket.js';
import {adoptTokenFromAddress, forgetToken, loadToken, saveToken} from './token.js';

const ROUTE_AGENTS = '#/background-agents';
const ROUTE_SCHEDULES = '#/schedules';
const ROUTE_WEBHOOKS = '#/webhooks';

class App {
  constructor() {
    adoptTokenFromAddress();
    this.scheduler = new FrameScheduler();
    this.views = {
      home: document.getElementById('home-view'),
      token: document.getElementById('token-view'),
      agents: document.getElementById('agents-view'),
      schedules: document.getElementById('schedules-view'),
      webhooks: document.getElementById('webhooks-view'),
    };
    this.connectionBadge = document.getElementById('connection-state');
    this.toasts = document.getElementById('toasts');
    this.tokenRejected = false;
    this.api = new Api({getToken: loadToken, onUnauthorized: () => this.onUnauthorized()});
    this.connection = new LiveConnection({
      getToken: loadToken,
      handlers: {
        onMessage: (message) => {
          if (this.agentsView && message.type !== 'schedule') this.agentsView.onMessage(message);
          if (this.schedulesView) this.schedulesView.onMessage(message);
        },
        onState: (state, detail) => this.showConnection(state, detail),
        onRefused: () => this.checkToken(),
        subscriptionAfter: (id) => (this.agentsView ? this.agentsView.subscriptionAfter(id) : 0),
      },
    });
    this.menu = new MenuButton(document.getElementById('execution-menu-button'), document.getElementById('execution-menu'));
    document.getElementById('token-form').addEventListener('submit', (event) => this.onTokenSubmitted(event));
    window.addEventListener('hashchange', () => this.route());
    this.showConnection('idle');
  }

  async start() {
    if (!loadToken()) {
      this.askForToken('This panel needs the host\'s access token to show and start runs.');
      return;
    }
    if (await this.checkToken()) this.route();
  }

  // Asks the host whether the token is good; a 401 shows the prompt.
  // Any other failure (host briefly down) is left to the reconnect loop.
  async checkToken() {
    try {
      await this.api.agents();
      return true;
    } catch (error) {
      return error.status !== 401;
    }
  }

  onUnauthorized() {
    if (this.tokenRejected) return;
    this.tokenRejected = true;
    this.connection.stop();
    forgetToken();
    this.askForToken('The host did not accept the token (401 unauthorized). It may be mistyped or from another host; paste the current one.');
  }

  askForToken(reason) {
    document.getElementById('token-reason').textContent = reason;
    this.show('token');
    this.showConnection('unauthorized');
    const input = document.getElementById('token-input');
    input.value = '';
    input.focus();
  }

  async onTokenSubmitted(event) {
    event.preventDefault();
    const token = document.getElementById('token-input').value.trim();
    if (!token) return;
    saveToken(token);
    this.tokenRejected = false;
    if (await this.checkToken()) {
      this.connection.restart();
      this.route();
    }
  }

  route() {
    if (this.tokenRejected || !loadToken()) return;
    if (window.location.hash === ROUTE_AGENTS) {
      this.openAgents();
    } else if (window.location.hash === ROUTE_SCHEDULES) {
      this.openSchedules();
    } else if (window.location.hash === ROUTE_WEBHOOKS) {
      this.openWebhooks();
    } else {
      this.show('home');
    }
    this.connection.start();
  }

  openAgents() {
    if (!this.agentsView) {
      this.agentsView = new BackgroundAgentsView({
        root: this.views.agents, api: this.api, connection: this.connection, scheduler: this.scheduler,
        notify: (message, kind) => this.notify(message, kind),
      });
      // The view may have missed the first snapshot: resync so it gets one.
      if (this.connection.running) this.connection.restart();
    }
    this.show('agents');
    document.title = 'Background Agents · Nightshift';
  }

  openSchedules() {
    if (!this.schedulesView) {
      this.schedulesView = new SchedulesView({root: this.views.schedules, api: this.api,
                                              notify: (message, kind) => this.notify(message, kind)});
    }
    this.schedulesView.refresh();
    this.show('schedules');
    document.title = 'Schedules · Nightshift';
  }

  openWebhooks() {
    if (!this.webhooksView) {
      this.webhooksView = new WebhooksView({root: this.views.webhooks, api: this.api,
                                            notify: (message, kind) => this.notify(message, kind)});
    }
    this.webhooksView.refresh();
    this.show('webhooks');
    document.title = 'Webhooks · Nightshift';
  }

  show(name) {
    for (const [key, view] of Object.entries(this.views)) view.hidden = key !== name;
    if (name === 'home' || name === 'token') document.title = 'Nightshift';
  }

  showConnection(state, detail = {}) {
    const labels = {
      idle: '', connecting: 'Connecting…', reconnecting: 'Reconnecting…', live: 'Live',
      unauthorized: 'Not signed in',
    };
    let text = labels[state] ?? state;
    if (state === 'waiting') {
      const seconds = detail.retryAt ? Math.max(1, Math.round((detail.retryAt - Date.now()) / 1000)) : null;
      text = seconds ? `Disconnected · retrying in ${seconds} s` : 'Disconnected';
      this.connectionBadge.title = detail.reason || '';
    } else {
      this.connectionBadge.title = '';
    }
    this.connectionBadge.dataset.state = state;
    this.connectionBadge.textContent = text;
  }

  notify(message, kind = 'error') {
    const toast = el('div', {class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-testid': 'toast'},
      el('span', {}, message),
      el('button', {type: 'button', class: 'icon-button', 'aria-label': 'Dismiss', onclick: () => toast.remove()}, '✕'));
    this.toasts.append(toast);
    setTimeout(() => toast.remove(), kind === 'error' ? 10000 : 4000);
  }
}

// A menu button per the WAI-ARIA pattern: Enter, Space or ArrowDown opens it
// and focuses the first item; arrows move; Escape and Tab close it.
class MenuButton {
  constructor(button, list) {
    this.button = button;
    this.list = list;
    this.items = [...list.querySelectorAll('[role=menuitem]')];
    button.addEventListener('click', () => (this.isOpen ? this.close() : this.open(false)));
    button.addEventListener('keydown', (event) => {
      if (event.key === 'ArrowDown' || event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        this.open(true);
      }
    });
    list.addEventListener('keydown', (event) => this.onMenuKey(event));
    for (const item of this.items) item.addEventListener('click', () => this.close());
    document.addEventListener('click', (event) => {
      if (this.isOpen && !button.contains(event.target) && !list.contains(event.target)) this.close();
    });
  }

  get isOpen() {
    return !this.list.hidden;
  }

  open(focusFirst) {
    this.list.hidden = false;
    this.button.setAttribute('aria-expanded', 'true');
    if (focusFirst) this.items[0].focus();
  }

  close(returnFocus = false) {
    this.list.hidden = true;
    this.button.setAttribute('aria-expanded', 'false');
    if (returnFocus) this.button.focus();
  }

  onMenuKey(event) {
    const index = this.items.indexOf(document.activeElement);
    if (event.key === 'Escape') {
      event.preventDefault();
      this.close(true);
    } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      const step = event.key === 'ArrowDown' ? 1 : -1;
      this.items[(index + step + this.items.length) % this.items.length].focus();
    } else if (event.key === 'Tab') {
      this.close();
    } else if (event.key === ' ') {
      event.preventDefault();
      document.activeElement.click();
    }
  }
}

new App().start();
