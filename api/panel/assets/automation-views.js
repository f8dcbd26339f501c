// The Schedules and Webhooks views (api.md v1.1). Schedules: the list with
// each one's next run time, created from the same form as Start, enabled or
// disabled, run now, deleted; kept live by the WebSocket's `schedule`
// messages. Webhooks: add one (the secret is sent once, never shown), delete
// one, and see its recent deliveries with their attempts and last error.

import {el, setText} from './dom.js';
import {formatFullTime, formatLocalTime} from './format.js';
import {StartDialog} from './start-dialog.js';

// Run ids cut to the shortest prefix at which they all differ, as the
// command line shows them: at least the creation time to the millisecond and
// 12 random bits (18 characters), since ids made moments apart begin alike
// and a column holds only a few of the host's runs. Returns a Map id -> prefix.
function shortRunIds(ids) {
  const sorted = [...new Set(ids.filter(Boolean))].sort();
  let length = 18;
  for (let i = 1; i < sorted.length; ++i) {
    let common = 0;
    while (common < sorted[i].length && sorted[i][common] === sorted[i - 1][common]) ++common;
    length = Math.max(length, common + 1);
  }
  return new Map(sorted.map((id) => [id, id.slice(0, length)]));
}

function when(iso) {
  return iso ? el('time', {dateTime: iso, title: formatFullTime(iso)}, formatLocalTime(iso)) : el('span', {class: 'muted'}, '—');
}

export class SchedulesView {
  constructor({root, api, notify}) {
    this.api = api;
    this.notify = notify;
    this.schedules = new Map();  // id -> Schedule
    this.dialog = new StartDialog({api, mode: 'schedule', onStarted: (schedule) => {
      this.apply(schedule);
      this.notify(`Schedule created; next run ${formatFullTime(schedule.nextRunAt) || 'not set'}.`, 'info');
    }});
    this.body = el('tbody', {'data-testid': 'schedule-rows'});
    this.empty = el('p', {class: 'empty', 'data-testid': 'schedules-empty'}, 'No schedules yet. Create one with the + button.');
    root.replaceChildren(
      el('div', {class: 'view-header'},
        el('h1', {}, 'Schedules'),
        el('button', {type: 'button', class: 'primary add-button', 'data-testid': 'new-schedule',
                      onclick: () => this.dialog.open()}, el('span', {'aria-hidden': 'true'}, '+'), ' New schedule')),
      el('section', {class: 'card', 'aria-label': 'Schedules'},
        el('table', {class: 'data-table', 'data-testid': 'schedules-table'},
          el('thead', {}, el('tr', {},
            ['Agent', 'Cron', 'Time zone', 'Next run', 'Last run', 'Enabled', ''].map((h) => el('th', {scope: 'col'}, h)))),
          this.body),
        this.empty));
  }

  async refresh() {
    try {
      const {schedules} = await this.api.listSchedules();
      this.schedules = new Map(schedules.map((s) => [s.id, s]));
      this.render();
    } catch (error) {
      this.notify(`Could not list the schedules: ${error.message}`);
    }
  }

  onMessage(message) {
    if (message.type === 'snapshot') this.refresh();
    if (message.type !== 'schedule') return;
    if (message.event === 'deleted') {
      this.schedules.delete(message.schedule.id);
      this.render();
    } else {
      this.apply(message.schedule);
    }
  }

  apply(schedule) {
    this.schedules.set(schedule.id, schedule);
    this.render();
  }

  render() {
    const rows = [...this.schedules.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    const lastRuns = shortRunIds(rows.map((s) => s.lastRunId));
    this.body.replaceChildren(...rows.map((s) => this.row(s, lastRuns)));
    this.empty.hidden = rows.length > 0;
  }

  row(s, lastRuns) {
    const toggle = el('button', {type: 'button', class: 'ghost small', 'data-testid': 'schedule-toggle',
                                 onclick: () => this.change(s, {enabled: !s.enabled})}, s.enabled ? 'Disable' : 'Enable');
    return el('tr', {'data-testid': 'schedule-row', 'data-schedule-id': s.id, 'data-enabled': String(s.enabled)},
      el('td', {}, el('span', {class: 'agent-name'}, s.agentId), s.task ? el('div', {class: 'muted task'}, s.task) : null),
      el('td', {}, el('code', {}, s.cron)),
      el('td', {}, s.timezone),
      el('td', {'data-testid': 'schedule-next'}, when(s.nextRunAt)),
      el('td', {}, s.lastRunId ? el('code', {title: s.lastRunId}, lastRuns.get(s.lastRunId)) : el('span', {class: 'muted'}, '—')),
      el('td', {}, el('span', {class: `badge ${s.enabled ? 'status-completed' : 'status-cancelled'}`}, s.enabled ? 'on' : 'off')),
      el('td', {class: 'actions'},
        toggle,
        el('button', {type: 'button', class: 'ghost small', 'data-testid': 'schedule-trigger', onclick: () => this.trigger(s)}, 'Run now'),
        el('button', {type: 'button', class: 'ghost small', 'data-testid': 'schedule-delete', onclick: () => this.remove(s)}, 'Delete')));
  }

  async change(s, change) {
    try {
      this.apply(await this.api.updateSchedule(s.id, change));
    } catch (error) {
      this.notify(`Could not change the schedule: ${error.message}`);
    }
  }

  async trigger(s) {
    try {
      const run = await this.api.triggerSchedule(s.id);
      this.notify(`Started ${run.agentName} (${run.instanceId}).`, 'info');
    } catch (error) {
      this.notify(`Could not start the schedule's run: ${error.message}`);
    }
  }

  async remove(s) {
    try {
      await this.api.deleteSchedule(s.id);
      this.schedules.delete(s.id);
      this.render();
    } catch (error) {
      this.notify(`Could not delete the schedule: ${error.message}`);
    }
  }
}

const EVENTS = ['run.started', 'run.finished', 'run.failed'];

export class WebhooksView {
  constructor({root, api, notify}) {
    this.api = api;
    this.notify = notify;
    this.urlInput = el('input', {id: 'webhook-url', type: 'url', required: true, placeholder: 'https://example.com/hooks/nightshift',
                                 'data-testid': 'webhook-url'});
    this.eventBoxes = EVENTS.map((name) => el('input', {type: 'checkbox', id: `webhook-event-${name}`, value: name,
                                                        checked: name === 'run.finished', 'data-testid': `webhook-event-${name}`}));
    this.agentInput = el('input', {id: 'webhook-agent', type: 'text', placeholder: 'all agents', 'data-testid': 'webhook-agent'});
    this.secretInput = el('input', {id: 'webhook-secret', type: 'password', autocomplete: 'new-password',
                                    placeholder: 'optional; signs each delivery', 'data-testid': 'webhook-secret'});
    this.errorText = el('p', {class: 'form-error', role: 'alert', 'data-testid': 'webhook-error', hidden: true});
    this.list = el('div', {class: 'webhook-list', 'data-testid': 'webhook-list'});
    this.empty = el('p', {class: 'empty', 'data-testid': 'webhooks-empty'}, 'No webhooks yet.');
    root.replaceChildren(
      el('div', {class: 'view-header'}, el('h1', {}, 'Webhooks')),
      el('section', {class: 'card', 'aria-labelledby': 'webhook-add-title'},
        el('div', {class: 'card-header'}, el('h2', {id: 'webhook-add-title'}, 'Add a webhook')),
        el('form', {class: 'webhook-form', onsubmit: (event) => this.create(event)},
          el('label', {for: 'webhook-url', class: 'field-label'}, 'URL'), this.urlInput,
          el('fieldset', {class: 'events'}, el('legend', {}, 'Events'),
            this.eventBoxes.map((box) => el('label', {class: 'checkbox-row', for: box.id}, box, ' ', box.value))),
          el('label', {for: 'webhook-agent', class: 'field-label'}, 'Only runs of agent'), this.agentInput,
          el('label', {for: 'webhook-secret', class: 'field-label'}, 'Secret'), this.secretInput,
          this.errorText,
          el('button', {type: 'submit', class: 'primary', 'data-testid': 'webhook-submit'}, 'Add webhook'))),
      el('section', {class: 'card', 'aria-label': 'Webhooks'}, this.list, this.empty));
  }

  async refresh() {
    try {
      const {webhooks} = await this.api.listWebhooks();
      this.list.replaceChildren(...webhooks.map((w) => this.card(w)));
      this.empty.hidden = webhooks.length > 0;
    } catch (error) {
      this.notify(`Could not list the webhooks: ${error.message}`);
    }
  }

  async create(event) {
    event.preventDefault();
    const body = {url: this.urlInput.value.trim(), events: this.eventBoxes.filter((b) => b.checked).map((b) => b.value)};
    if (this.agentInput.value.trim()) body.agentId = this.agentInput.value.trim();
    if (this.secretInput.value) body.secret = this.secretInput.value;
    try {
      await this.api.createWebhook(body);
      this.errorText.hidden = true;
      this.urlInput.value = '';
      this.secretInput.value = '';
      await this.refresh();
    } catch (error) {
      this.errorText.hidden = false;
      setText(this.errorText, error.message);
    }
  }

  card(w) {
    const deliveries = el('tbody', {'data-testid': 'delivery-rows'});
    const section = el('div', {class: 'deliveries', hidden: true},
      el('table', {class: 'data-table'},
        el('thead', {}, el('tr', {}, ['Status', 'Event', 'Run', 'Attempts', 'Code', 'Created', 'Last error'].map((h) => el('th', {scope: 'col'}, h)))),
        deliveries));
    const load = async () => {
      try {
        const {deliveries: list} = await this.api.deliveries(w.id);
        const runs = shortRunIds(list.map((d) => d.instanceId));
        deliveries.replaceChildren(...list.map((d) => el('tr', {'data-testid': 'delivery-row', 'data-status': d.status},
          el('td', {}, el('span', {class: `badge status-${d.status === 'delivered' ? 'completed' : d.status === 'failed' ? 'failed' : 'queued'}`}, d.status)),
          el('td', {}, d.event),
          el('td', {}, el('code', {title: d.instanceId}, runs.get(d.instanceId))),
          el('td', {}, String(d.attempts)),
          el('td', {}, d.lastStatusCode === null ? '—' : String(d.lastStatusCode)),
          el('td', {}, when(d.createdAt)),
          el('td', {class: 'muted'}, d.lastError || ''))));
        if (list.length === 0) deliveries.replaceChildren(el('tr', {}, el('td', {colspan: '7', class: 'muted'}, 'No deliveries yet.')));
      } catch (error) {
        this.notify(`Could not list the deliveries: ${error.message}`);
      }
    };
    const toggle = el('button', {type: 'button', class: 'ghost small', 'data-testid': 'webhook-deliveries', 'aria-expanded': 'false',
      onclick: async () => {
        section.hidden = !section.hidden;
        toggle.setAttribute('aria-expanded', String(!section.hidden));
        if (!section.hidden) await load();
      }}, 'Deliveries');
    return el('article', {class: 'webhook', 'data-testid': 'webhook-card', 'data-webhook-id': w.id},
      el('div', {class: 'webhook-summary'},
        el('code', {class: 'webhook-url'}, w.url),
        el('span', {class: 'muted'}, w.events.join(', ')),
        el('span', {class: 'muted'}, w.agentId || 'all agents'),
        el('span', {class: 'actions'},
          toggle,
          el('button', {type: 'button', class: 'ghost small', onclick: () => load()}, 'Refresh'),
          el('button', {type: 'button', class: 'ghost small', 'data-testid': 'webhook-delete', onclick: async () => {
            try {
              await this.api.deleteWebhook(w.id);
              await this.refresh();
            } catch (error) {
              this.notify(`Could not delete the webhook: ${error.message}`);
            }
          }}, 'Delete'))),
      section);
  }
}
