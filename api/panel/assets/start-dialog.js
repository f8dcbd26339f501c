// The Start dialog: pick an agent (grouped by kind, unavailable ones shown
// with their reason), give an optional task and fill a form drawn from the
// agent's params schema (agents.md). Only fields the user changed are sent,
// so the host's own merge of defaults (manifest, then remixes) applies.

import {el} from './dom.js';
import {KIND_LABELS} from './format.js';

const KIND_HINTS = {
  installed: 'Plugins that ship with the host or were installed for you.',
  remix: 'No-code variations of another agent.',
  local: 'Plugins that live in this workspace.',
};

export class StartDialog {
  // onStarted(result) is called with the run the host created (or, with
  // mode 'schedule', the schedule: the same form plus when to start).
  constructor({api, onStarted, mode = 'start'}) {
    this.api = api;
    this.onStarted = onStarted;
    this.mode = mode;
    const p = mode === 'schedule' ? 'schedule' : 'start';
    this.prefix = p;
    this.agents = [];
    this.fields = [];
    this.agentGroups = el('div', {class: 'agent-groups', 'data-testid': 'agent-groups'});
    this.taskInput = el('textarea', {
      id: `${p}-task`, name: 'task', rows: '3', 'data-testid': `${p}-task`,
      placeholder: 'What should the agent do? (optional)',
    });
    this.paramsFieldset = el('fieldset', {class: 'params', 'data-testid': `${p}-params`, hidden: true});
    this.errorText = el('p', {class: 'form-error', role: 'alert', 'data-testid': `${p}-error`, hidden: true});
    this.submitButton = el('button', {type: 'submit', class: 'primary', 'data-testid': `${p}-submit`},
      mode === 'schedule' ? 'Create schedule' : 'Start');
    this.whenFields = mode === 'schedule' ? this.scheduleFields() : null;
    this.form = el('form', {class: 'start-form', method: 'dialog', onsubmit: (event) => this.submit(event)},
      el('header', {class: 'dialog-header'},
        el('h2', {id: `${p}-title`}, mode === 'schedule' ? 'Schedule a background agent' : 'Start a background agent'),
        el('button', {type: 'button', class: 'icon-button', 'aria-label': 'Close', onclick: () => this.close()}, '✕')),
      el('div', {class: 'dialog-body'},
        this.whenFields,
        el('fieldset', {class: 'agent-picker'}, el('legend', {}, 'Agent'), this.agentGroups),
        el('label', {for: `${p}-task`, class: 'field-label'}, 'Task'),
        this.taskInput,
        this.paramsFieldset,
        this.errorText),
      el('footer', {class: 'dialog-footer'},
        el('button', {type: 'button', class: 'ghost', onclick: () => this.close()}, 'Cancel'),
        this.submitButton));
    this.element = el('dialog', {class: 'start-dialog', 'aria-labelledby': `${p}-title`, 'data-testid': `${p}-dialog`},
      this.form);
    this.agentGroups.addEventListener('change', () => this.renderParams());
    document.body.append(this.element);
  }

  async open() {
    this.showError('');
    this.taskInput.value = '';
    if (this.cronInput) this.cronInput.value = '';
    this.agentGroups.replaceChildren(el('p', {class: 'muted'}, 'Loading agents…'));
    this.paramsFieldset.hidden = true;
    this.element.showModal();
    try {
      this.agents = await this.api.agents();
    } catch (error) {
      this.agentGroups.replaceChildren();
      this.showError(`Could not list the agents: ${error.message}`);
      return;
    }
    this.renderAgents();
  }

  close() {
    this.element.close();
  }

  renderAgents() {
    const groups = [];
    for (const kind of ['installed', 'remix', 'local']) {
      const agents = this.agents.filter((agent) => agent.source === kind)
        .sort((a, b) => a.name.localeCompare(b.name));
      if (agents.length === 0) continue;
      groups.push(el('section', {class: 'agent-group', 'data-testid': `agent-group-${kind}`, 'aria-label': KIND_LABELS[kind]},
        el('h3', {}, KIND_LABELS[kind], ' ', el('span', {class: 'muted hint'}, KIND_HINTS[kind])),
        agents.map((agent) => this.renderAgentOption(agent))));
    }
    if (groups.length === 0) {
      groups.push(el('p', {class: 'muted'}, 'No agents found. Installed agents live next to the host; local and remix agents in the workspace\'s .nightshift folder.'));
    }
    this.agentGroups.replaceChildren(...groups);
    const first = this.agentGroups.querySelector('input[type=radio]:not(:disabled)');
    if (first) {
      first.checked = true;
      first.focus();
    }
    this.renderParams();
  }

  renderAgentOption(agent) {
    const inputId = `agent-${agent.id.replace(/[^a-z0-9_-]/gi, '_')}`;
    const unavailable = agent.available === false;
    return el('label', {
      class: `agent-option${unavailable ? ' unavailable' : ''}`, for: inputId,
      'data-testid': 'agent-option', 'data-agent-id': agent.id,
    },
      el('input', {type: 'radio', name: 'agent', id: inputId, value: agent.id, disabled: unavailable,
                   'aria-describedby': `${inputId}-desc`}),
      el('span', {class: 'agent-text'},
        el('span', {class: 'agent-title'}, el('strong', {}, agent.name),
           agent.version ? el('span', {class: 'muted'}, ` ${agent.version}`) : null,
           agent.baseAgentId ? el('span', {class: 'muted'}, ` · remix of ${agent.baseAgentId}`) : null),
        el('span', {class: 'agent-description', id: `${inputId}-desc`},
           agent.description || 'No description.',
           unavailable ? el('span', {class: 'unavailable-reason', 'data-testid': 'agent-unavailable-reason'},
                            `Unavailable: ${agent.error || 'unknown reason'}`) : null)));
  }

  selectedAgent() {
    const checked = this.agentGroups.querySelector('input[name=agent]:checked');
    return checked ? this.agents.find((agent) => agent.id === checked.value) : null;
  }

  renderParams() {
    const agent = this.selectedAgent();
    const schema = agent && agent.params && typeof agent.params === 'object' ? agent.params : {};
    this.fields = Object.entries(schema).map(([name, spec]) => new ParamField(name, spec || {}, this.prefix));
    this.paramsFieldset.replaceChildren(el('legend', {}, 'Parameters'), ...this.fields.map((field) => field.element));
    this.paramsFieldset.hidden = this.fields.length === 0;
  }

  async submit(event) {
    event.preventDefault();
    const agent = this.selectedAgent();
    if (!agent) {
      this.showError('Choose an agent to start.');
      return;
    }
    const params = {};
    for (const field of this.fields) {
      const result = field.read();
      if (result.error) {
        this.showError(result.error);
        field.focus();
        return;
      }
      if (result.set) params[field.name] = result.value;
    }
    this.submitButton.disabled = true;
    this.showError('');
    try {
      let result;
      if (this.mode === 'schedule') {
        const body = {agentId: agent.id, params, cron: this.cronInput.value.trim(),
                      timezone: this.timezoneInput.value.trim() || 'UTC', overlap: this.overlapInput.value};
        if (this.taskInput.value) body.task = this.taskInput.value;
        result = await this.api.createSchedule(body);
      } else {
        result = await this.api.start(agent.id, this.taskInput.value, params);
      }
      this.close();
      this.onStarted(result);
    } catch (error) {
      this.showError(error.message);
    } finally {
      this.submitButton.disabled = false;
    }
  }

  // When a schedule starts its runs: cron, time zone and overlap.
  scheduleFields() {
    this.cronInput = el('input', {id: 'schedule-cron', name: 'cron', type: 'text', required: true, spellcheck: 'false',
                                  class: 'code', 'data-testid': 'schedule-cron', placeholder: '0 3 * * *',
                                  'aria-describedby': 'schedule-cron-help'});
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    this.timezoneInput = el('input', {id: 'schedule-timezone', name: 'timezone', type: 'text', value: zone,
                                      'data-testid': 'schedule-timezone', spellcheck: 'false'});
    this.overlapInput = el('select', {id: 'schedule-overlap', name: 'overlap', 'data-testid': 'schedule-overlap'},
      el('option', {value: 'skip'}, 'skip: start nothing while the previous run is active'),
      el('option', {value: 'queue'}, 'queue: start another run anyway'));
    return el('fieldset', {class: 'schedule-when'}, el('legend', {}, 'When'),
      el('label', {for: 'schedule-cron', class: 'field-label'}, 'Cron'),
      this.cronInput,
      el('span', {class: 'help muted', id: 'schedule-cron-help'},
        'minute hour day-of-month month day-of-week, e.g. "0 3 * * *" (03:00 daily), "*/15 * * * *"; or @hourly, @daily, @weekly, @monthly'),
      el('label', {for: 'schedule-timezone', class: 'field-label'}, 'Time zone (IANA)'),
      this.timezoneInput,
      el('label', {for: 'schedule-overlap', class: 'field-label'}, 'If the previous run is still active'),
      this.overlapInput);
  }

  showError(message) {
    this.errorText.hidden = !message;
    this.errorText.textContent = message;
  }
}

// One parameter's input, by its schema type.
class ParamField {
  constructor(name, spec, prefix = 'start') {
    this.name = name;
    this.spec = spec;
    this.touched = false;
    const id = `${prefix === 'start' ? '' : `${prefix}-`}param-${name.replace(/[^a-z0-9_-]/gi, '_')}`;
    this.input = this.createInput(id);
    this.input.addEventListener('input', () => { this.touched = true; });
    this.input.addEventListener('change', () => { this.touched = true; });
    const label = el('label', {for: id, class: 'field-label'}, name,
      spec.required ? el('span', {class: 'required', 'aria-hidden': 'true'}, ' *') : null,
      el('span', {class: 'type muted'}, ` ${spec.type || 'string'}`));
    const help = spec.description ? el('span', {class: 'help muted', id: `${id}-help`}, spec.description) : null;
    if (help) this.input.setAttribute('aria-describedby', `${id}-help`);
    if (spec.required) this.input.setAttribute('aria-required', 'true');
    this.element = el('div', {class: `param-field type-${spec.type || 'string'}`, 'data-testid': 'param-field', 'data-param': name},
      this.input.type === 'checkbox' ? el('div', {class: 'checkbox-row'}, this.input, label) : [label, this.input], help);
  }

  createInput(id) {
    const {type = 'string', default: fallback} = this.spec;
    const hasDefault = fallback !== undefined;
    if (Array.isArray(this.spec.enum)) {
      const select = el('select', {id, name: this.name},
        hasDefault ? null : el('option', {value: ''}, '(not set)'),
        this.spec.enum.map((choice) => el('option', {value: JSON.stringify(choice)}, String(choice))));
      if (hasDefault) select.value = JSON.stringify(fallback);
      return select;
    }
    switch (type) {
      case 'boolean': {
        const box = el('input', {type: 'checkbox', id, name: this.name});
        box.checked = fallback === true;
        return box;
      }
      case 'number':
      case 'integer': {
        const input = el('input', {type: 'number', id, name: this.name, step: type === 'integer' ? '1' : 'any',
                                   inputmode: type === 'integer' ? 'numeric' : 'decimal'});
        if (hasDefault) input.value = String(fallback);
        return input;
      }
      case 'object':
      case 'array': {
        const area = el('textarea', {id, name: this.name, rows: '3', class: 'code', spellcheck: 'false',
                                     placeholder: type === 'object' ? '{ }' : '[ ]'});
        if (hasDefault) area.value = JSON.stringify(fallback, null, 2);
        return area;
      }
      default: {
        const input = el('input', {type: 'text', id, name: this.name});
        if (hasDefault) input.value = String(fallback);
        return input;
      }
    }
  }

  // -> {set: bool, value} or {error}. Untouched fields are left to the host.
  read() {
    const {type = 'string', required} = this.spec;
    const raw = this.input.type === 'checkbox' ? this.input.checked : this.input.value;
    const empty = raw === '';
    if (!this.touched) {
      if (required && this.spec.default === undefined && empty) return {error: `${this.name} is required.`};
      return {set: false};
    }
    if (empty) {
      if (required) return {error: `${this.name} is required.`};
      return {set: false};
    }
    if (this.input.tagName === 'SELECT') return {set: true, value: JSON.parse(raw)};
    switch (type) {
      case 'boolean':
        return {set: true, value: raw};
      case 'number':
      case 'integer': {
        const value = Number(raw);
        if (!Number.isFinite(value)) return {error: `${this.name} must be a number.`};
        if (type === 'integer' && !Number.isInteger(value)) return {error: `${this.name} must be a whole number.`};
        return {set: true, value};
      }
      case 'object':
      case 'array': {
        try {
          const value = JSON.parse(raw);
          const fits = type === 'array' ? Array.isArray(value) : value && typeof value === 'object' && !Array.isArray(value);
          if (!fits) return {error: `${this.name} must be a JSON ${type}.`};
          return {set: true, value};
        } catch (error) {
          return {error: `${this.name} is not valid JSON: ${error.message}`};
        }
      }
      default:
        return {set: true, value: raw};
    }
  }

  focus() {
    this.input.focus();
  }
}
