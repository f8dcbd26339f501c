// The Background Agents panel: Active (live from the WebSocket) and History
// (pages from GET /background-agents, plus runs that finish while we watch).

import {el, setText} from './dom.js';
import {isActive, KIND_LABELS, TERMINAL_STATUSES} from './format.js';
import {KeyedList, newestCreatedFirst, newestEndedFirst} from './keyed-list.js';
import {LogView} from './log-view.js';
import {RunRow} from './run-row.js';
import {StartDialog} from './start-dialog.js';

const HISTORY_PAGE = 50;
const STATUS_RANK = {queued: 0, running: 1, stopping: 2, completed: 3, failed: 3, cancelled: 3};

export class BackgroundAgentsView {
  constructor({root, api, connection, scheduler, notify}) {
    this.api = api;
    this.connection = connection;
    this.scheduler = scheduler;
    this.notify = notify;
    this.filters = {status: '', agentId: ''};
    this.nextCursor = null;
    this.historyGeneration = 0;
    this.logViews = new Map();  // instanceId -> LogView of expanded runs

    const rowActions = {
      onStop: (run) => this.stopRun(run),
      onDelete: (run) => this.deleteRun(run),
      onRerun: (run) => this.rerunRun(run),
      onToggle: (row) => this.toggleLogs(row),
    };
    const createRow = (run) => new RunRow(run, rowActions);
    this.activeBody = el('ul', {class: 'run-list', 'data-testid': 'active-list', 'aria-labelledby': 'active-title'});
    this.historyBody = el('ul', {class: 'run-list', 'data-testid': 'history-list', 'aria-labelledby': 'history-title'});
    this.active = new KeyedList({container: this.activeBody, compare: newestCreatedFirst, createRow, scheduler,
                                 onChange: () => this.renderCounts()});
    this.history = new KeyedList({container: this.historyBody, compare: newestEndedFirst, createRow, scheduler,
                                  onChange: () => this.renderCounts()});
    this.startDialog = new StartDialog({api, onStarted: (run) => this.applyRun(run)});
    this.confirmDialog = this.buildConfirmDialog();
    this.build(root);
    setInterval(() => this.scheduler.schedule('tick', () => this.tick()), 1000);
  }

  build(root) {
    this.activeCount = el('span', {class: 'count', 'data-testid': 'active-count'}, '0');
    this.activeEmpty = el('p', {class: 'empty', 'data-testid': 'active-empty'}, 'Nothing is running. Start an agent with the + button.');
    this.historyEmpty = el('p', {class: 'empty', 'data-testid': 'history-empty'}, 'No finished runs yet.');
    this.loadMoreButton = el('button', {type: 'button', class: 'ghost', 'data-testid': 'load-more', hidden: true,
                                        onclick: () => this.loadHistory(false)}, 'Load more');
    this.statusFilter = el('select', {id: 'filter-status', 'data-testid': 'filter-status',
                                      onchange: () => this.setFilter('status', this.statusFilter.value)},
      el('option', {value: ''}, 'All statuses'),
      TERMINAL_STATUSES.map((status) => el('option', {value: status}, status)));
    this.agentFilter = el('select', {id: 'filter-agent', 'data-testid': 'filter-agent',
                                     onchange: () => this.setFilter('agentId', this.agentFilter.value)},
      el('option', {value: ''}, 'All agents'));
    this.agentFilter.addEventListener('focus', () => this.refreshAgentFilter());
    root.replaceChildren(
      el('div', {class: 'view-header'},
        el('h1', {}, 'Background Agents'),
        el('button', {type: 'button', class: 'primary add-button', 'data-testid': 'start-button',
                      'aria-label': 'Start a background agent', title: 'Start a background agent',
                      onclick: () => this.startDialog.open()}, el('span', {'aria-hidden': 'true'}, '+'), ' Start')),
      el('section', {class: 'card', 'aria-labelledby': 'active-title', 'data-testid': 'active-section'},
        el('div', {class: 'card-header'}, el('h2', {id: 'active-title'}, 'Active ', this.activeCount)),
        this.activeBody, this.activeEmpty),
      el('section', {class: 'card', 'aria-labelledby': 'history-title', 'data-testid': 'history-section'},
        el('div', {class: 'card-header'},
          el('h2', {id: 'history-title'}, 'History'),
          el('div', {class: 'filters'},
            el('label', {for: 'filter-status', class: 'visually-hidden'}, 'Filter history by status'), this.statusFilter,
            el('label', {for: 'filter-agent', class: 'visually-hidden'}, 'Filter history by agent'), this.agentFilter,
            el('button', {type: 'button', class: 'ghost small', 'data-testid': 'clear-finished',
                          onclick: () => this.confirmDialog.showModal()}, 'Clear finished'))),
        this.historyBody, this.historyEmpty,
        el('div', {class: 'load-more-row'}, this.loadMoreButton)));
    this.renderCounts();
    this.refreshAgentFilter();
  }

  buildConfirmDialog() {
    const dialog = el('dialog', {class: 'confirm-dialog', 'data-testid': 'confirm-clear', 'aria-labelledby': 'confirm-title'},
      el('form', {method: 'dialog'},
        el('h2', {id: 'confirm-title'}, 'Clear finished runs?'),
        el('p', {}, 'This deletes every completed, failed and cancelled run and its log. Active runs are not touched.'),
        el('footer', {class: 'dialog-footer'},
          el('button', {value: 'cancel', class: 'ghost'}, 'Cancel'),
          el('button', {value: 'clear', class: 'danger', 'data-testid': 'confirm-clear-button'}, 'Clear finished'))));
    dialog.addEventListener('close', () => {
      if (dialog.returnValue === 'clear') this.clearFinished();
      dialog.returnValue = '';
    });
    document.body.append(dialog);
    return dialog;
  }

  // --- what the host tells us -------------------------------------------

  onMessage(message) {
    switch (message.type) {
      case 'snapshot':
        this.applySnapshot(message);
        break;
      case 'run':
        if (message.event === 'deleted') this.forget(message.run.instanceId);
        else this.applyRun(message.run);
        break;
      case 'logs': {
        const view = this.logViews.get(message.instanceId);
        if (view) view.receive(message.entries || []);
        break;
      }
      case 'error':
        if (message.code !== 'run_not_found') console.warn('panel: host says', message.code, message.message);
        break;
      default:
        break;
    }
  }

  // A fresh snapshot replaces what we know: after a reconnect nothing we
  // showed before can be trusted.
  applySnapshot({active = [], history = []}) {
    const activeIds = new Set(active.map((run) => run.instanceId));
    for (const id of this.active.ids()) if (!activeIds.has(id)) this.active.remove(id);
    for (const run of active) this.active.upsert(run);
    const noFilters = !this.filters.status && !this.filters.agentId;
    if (noFilters) {
      const historyIds = new Set(history.map((run) => run.instanceId));
      for (const id of this.history.ids()) if (!historyIds.has(id)) this.history.remove(id);
    }
    for (const run of history) if (this.matchesFilters(run)) this.history.upsert(run);
    this.loadHistory(true);
  }

  // Runs from the socket and from REST answers can arrive in either order,
  // so a run never goes back to an earlier status (a snapshot resets that).
  applyRun(incoming) {
    const id = incoming.instanceId;
    const current = this.active.get(id) || this.history.get(id);
    let run = incoming;
    if (current) {
      const rank = STATUS_RANK[current.status] ?? 0;
      if (rank === 3 && (STATUS_RANK[incoming.status] ?? 0) < 3) return;
      if ((STATUS_RANK[incoming.status] ?? 0) < rank) run = {...incoming, status: current.status};
    }
    if (isActive(run)) {
      this.history.remove(id);
      this.active.upsert(run);
    } else {
      this.active.remove(id);
      if (this.matchesFilters(run)) this.history.upsert(run);
      else this.closeLogs(id);
    }
  }

  forget(id) {
    this.closeLogs(id);
    this.active.remove(id);
    this.history.remove(id);
  }

  matchesFilters(run) {
    return (!this.filters.status || run.status === this.filters.status) &&
           (!this.filters.agentId || run.agentId === this.filters.agentId);
  }

  // --- history pages ----------------------------------------------------

  async loadHistory(fromStart) {
    const generation = fromStart ? ++this.historyGeneration : this.historyGeneration;
    this.loadMoreButton.disabled = true;
    try {
      const page = await this.api.listRuns({
        limit: HISTORY_PAGE, cursor: fromStart ? undefined : this.nextCursor,
        status: this.filters.status || undefined, agentId: this.filters.agentId || undefined,
      });
      if (generation !== this.historyGeneration) return;
      for (const run of page.history || []) this.history.upsert(run);
      this.nextCursor = page.nextCursor || null;
    } catch (error) {
      if (generation === this.historyGeneration) this.notify(`Could not load the history: ${error.message}`);
    } finally {
      if (generation === this.historyGeneration) {
        this.loadMoreButton.disabled = false;
        this.loadMoreButton.hidden = !this.nextCursor;
      }
    }
  }

  setFilter(name, value) {
    this.filters[name] = value;
    for (const id of this.history.ids()) this.history.remove(id);
    this.nextCursor = null;
    this.loadMoreButton.hidden = true;
    this.loadHistory(true);
  }

  async refreshAgentFilter() {
    try {
      const agents = await this.api.agents();
      const selected = this.agentFilter.value;
      const options = [el('option', {value: ''}, 'All agents')];
      for (const agent of agents.sort((a, b) => a.id.localeCompare(b.id))) {
        options.push(el('option', {value: agent.id}, `${agent.name} (${KIND_LABELS[agent.source] || agent.source})`));
      }
      if (selected && !agents.some((agent) => agent.id === selected)) options.push(el('option', {value: selected}, selected));
      this.agentFilter.replaceChildren(...options);
      this.agentFilter.value = selected;
    } catch (error) {
      console.warn('panel: could not list agents for the filter', error);
    }
  }

  // --- actions ------------------------------------------------------------

  // Starts a finished run again; the new run arrives over the WebSocket too.
  async rerunRun(run) {
    try {
      const started = await this.api.rerun(run.instanceId);
      this.applyRun(started);
      this.notify(`Started ${started.agentName} again.`, 'info');
    } catch (error) {
      this.notify(`Could not run it again: ${error.message}`);
    }
  }

  async stopRun(run) {
    this.applyRun({...run, status: 'stopping'});  // show it at once; the host confirms
    try {
      this.applyRun(await this.api.stop(run.instanceId));
    } catch (error) {
      if (error.code !== 'run_not_active') this.notify(`Could not stop the run: ${error.message}`);
    }
  }

  async deleteRun(run) {
    try {
      await this.api.remove(run.instanceId);
      this.forget(run.instanceId);
    } catch (error) {
      if (error.code === 'run_not_found') this.forget(run.instanceId);
      else this.notify(`Could not delete the run: ${error.message}`);
    }
  }

  // Deletes finished runs page by page until none is left. Only runs the
  // host lists under `history` are deleted, and the host refuses to delete
  // an active one (409), so active runs are never touched.
  async clearFinished() {
    let deleted = 0;
    try {
      for (let round = 0; round < 1000; round += 1) {
        const page = await this.api.listRuns({limit: 200});
        const finished = (page.history || []).filter((run) => !isActive(run));
        if (finished.length === 0) break;
        const before = deleted;
        await runWithConcurrency(finished, 4, async (run) => {
          try {
            await this.api.remove(run.instanceId);
            deleted += 1;
          } catch (error) {
            if (error.code !== 'run_not_found' && error.code !== 'run_active') throw error;
          }
          this.forget(run.instanceId);
        });
        if (deleted === before) break;
      }
      this.notify(`Deleted ${deleted} finished run${deleted === 1 ? '' : 's'}.`, 'info');
    } catch (error) {
      this.notify(`Could not clear the finished runs: ${error.message}`);
    }
    this.loadHistory(true);
  }

  toggleLogs(row) {
    const id = row.run.instanceId;
    if (this.logViews.has(id)) {
      this.closeLogs(id);
      return;
    }
    const view = new LogView(row.run, {api: this.api, connection: this.connection, scheduler: this.scheduler,
                                       notify: this.notify});
    this.logViews.set(id, view);
    row.logView = view;
    row.logSlot.replaceChildren(view.element);
    row.setExpanded(true);
    view.open();
  }

  closeLogs(id) {
    const view = this.logViews.get(id);
    if (!view) return;
    view.close();
    this.logViews.delete(id);
    const row = this.active.row(id) || this.history.row(id);
    if (row && row.logView === view) {
      row.logView = null;
      row.logSlot.replaceChildren();
      row.setExpanded(false);
    }
  }

  // Moving a run between lists makes a new row; carry an open log along.
  adoptLogView(row) {
    const view = this.logViews.get(row.run.instanceId);
    if (!view || row.logView === view) return;
    row.logView = view;
    row.logSlot.replaceChildren(view.element);
    row.setExpanded(true);
  }

  subscriptionAfter(id) {
    const view = this.logViews.get(id);
    return view ? view.resumeAfter : 0;
  }

  // --- rendering ------------------------------------------------------------

  renderCounts() {
    setText(this.activeCount, String(this.active.size));
    this.activeEmpty.hidden = this.active.size > 0;
    this.historyEmpty.hidden = this.history.size > 0;
    setText(this.historyEmpty, this.filters.status || this.filters.agentId ? 'No finished runs match the filters.' : 'No finished runs yet.');
    this.active.forEachRow((row) => this.adoptLogView(row));
    this.history.forEachRow((row) => this.adoptLogView(row));
  }

  tick() {
    this.active.forEachRow((row) => {
      if (row.ticking) row.renderDuration();
    });
  }
}

async function runWithConcurrency(items, limit, task) {
  let next = 0;
  const workers = Array.from({length: Math.min(limit, items.length)}, async () => {
    while (next < items.length) {
      const item = items[next];
      next += 1;
      await task(item);
    }
  });
  await Promise.all(workers);
}
