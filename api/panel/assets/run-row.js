// One run in a list: built once, then patched field by field as updates come.

import {el, setText} from './dom.js';
import {formatDuration, formatFullTime, formatLocalTime, isActive, KIND_LABELS} from './format.js';

// How a run ended, in a word, when its error says it was killed or crashed.
function errorKind(error) {
  if (typeof error !== 'string') return '';
  if (error.startsWith('agent crashed')) return 'Crashed';
  if (error.startsWith('killed after')) return 'Killed';
  if (error.startsWith('agent process exited')) return 'Exited';
  if (error.startsWith('exceeded its') || error.startsWith('timed out')) return 'Limit';
  return '';
}

export class RunRow {
  // actions: {onStop(run), onDelete(run), onRerun(run), onToggle(row)}
  constructor(run, actions) {
    this.actions = actions;
    this.run = null;
    this.receivedAt = 0;
    this.logView = null;
    const id = run.instanceId;
    this.expandButton = el('button', {
      type: 'button', class: 'icon-button expand', 'aria-expanded': 'false', 'aria-controls': `logs-${id}`,
      'data-testid': 'toggle-logs', onclick: () => actions.onToggle(this),
    }, el('span', {class: 'chevron', 'aria-hidden': 'true'}, '▸'));
    this.statusBadge = el('span', {class: 'badge', 'data-testid': 'run-status'});
    this.agentName = el('span', {class: 'agent-name', 'data-testid': 'run-agent'});
    this.agentKind = el('span', {class: 'kind'});
    this.isolation = el('span', {class: 'kind isolation', 'data-testid': 'run-isolation'});
    this.started = el('time', {class: 'started', 'data-testid': 'run-started'});
    this.duration = el('span', {class: 'duration', 'data-testid': 'run-duration'});
    // The host executing the run (several hosts may share one store).
    this.hostSep = el('span', {class: 'sep', 'aria-hidden': 'true', hidden: true}, '·');
    this.host = el('span', {class: 'host muted', 'data-testid': 'run-host', hidden: true});
    this.task = el('span', {class: 'task', 'data-testid': 'run-task'});
    this.usage = el('span', {class: 'usage muted', 'data-testid': 'run-usage', hidden: true});
    this.progressBar = el('span', {class: 'progress-fill'});
    this.progress = el('span', {
      class: 'progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100',
      'data-testid': 'run-progress', hidden: true,
    }, this.progressBar);
    this.stopButton = el('button', {
      type: 'button', class: 'danger-outline small', 'data-testid': 'stop-run', onclick: () => actions.onStop(this.run),
    }, 'Stop');
    this.deleteButton = el('button', {
      type: 'button', class: 'ghost small', 'data-testid': 'delete-run', onclick: () => actions.onDelete(this.run),
    }, 'Delete');
    this.errorKind = el('strong', {class: 'error-kind', 'data-testid': 'run-error-kind'});
    this.errorText = el('span', {});
    this.error = el('p', {class: 'run-error', 'data-testid': 'run-error', hidden: true}, this.errorKind, this.errorText);
    this.rerunButton = el('button', {
      type: 'button', class: 'ghost small', 'data-testid': 'rerun-run', onclick: () => actions.onRerun(this.run),
    }, 'Run again');
    this.origin = el('span', {class: 'origin muted', 'data-testid': 'run-origin', hidden: true});
    this.logSlot = el('div', {class: 'log-slot', id: `logs-${id}`, hidden: true});
    this.element = el('li', {class: 'run', 'data-testid': 'run-row', 'data-run-id': id},
      el('div', {class: 'run-summary', onclick: (event) => this.onSummaryClick(event)},
        this.expandButton, this.statusBadge,
        el('span', {class: 'agent'}, this.agentName, this.origin, this.agentKind, this.isolation),
        el('span', {class: 'when'}, this.started, el('span', {class: 'sep', 'aria-hidden': 'true'}, '·'), this.duration,
          this.hostSep, this.host),
        this.task, el('span', {class: 'meter'}, this.progress, this.usage),
        el('span', {class: 'actions'}, this.stopButton, this.rerunButton, this.deleteButton)),
      this.error, this.logSlot);
    this.update(run);
  }

  // Clicking anywhere on the summary (not on a control) expands the run too.
  onSummaryClick(event) {
    if (event.target.closest('button, a, input, select')) return;
    this.actions.onToggle(this);
  }

  update(run) {
    const previous = this.run;
    this.run = run;
    this.receivedAt = performance.now();
    if (!previous || previous.status !== run.status) this.renderStatus(run);
    if (!previous) this.renderIdentity(run);
    if (!previous || previous.startedAt !== run.startedAt || previous.createdAt !== run.createdAt) {
      const when = run.startedAt || run.createdAt;
      setText(this.started, formatLocalTime(when));
      this.started.dateTime = when || '';
      this.started.title = `${run.startedAt ? 'Started' : 'Created'} ${formatFullTime(when)}`;
    }
    if (!previous || previous.progress !== run.progress) this.renderProgress(run.progress);
    if (!previous || previous.host !== run.host) this.renderHost(run.host);
    this.renderUsage(run.usage);
    if (!previous || previous.error !== run.error) {
      this.error.hidden = !run.error;
      const kind = errorKind(run.error);
      setText(this.errorKind, kind ? `${kind}: ` : '');
      this.errorKind.hidden = !kind;
      setText(this.errorText, run.error || '');
    }
    this.renderDuration();
    if (this.logView) this.logView.runChanged(run);
  }

  renderIdentity(run) {
    setText(this.agentName, run.agentName || run.agentId);
    setText(this.agentKind, KIND_LABELS[run.agentSource] || run.agentSource || '');
    this.agentKind.title = run.agentId;
    const isolation = run.isolation || 'thread';
    setText(this.isolation, isolation);
    this.isolation.title = isolation === 'process'
      ? 'Runs in its own process: a crash or a runaway loop ends this run only'
      : 'Runs in a thread of the host';
    const hasTask = typeof run.task === 'string' && run.task !== '';
    setText(this.task, hasTask ? run.task : 'no task');
    this.task.classList.toggle('muted', !hasTask);
    this.task.title = hasTask ? run.task : '';
    this.expandButton.setAttribute('aria-label', `Show the log of ${run.agentName || run.agentId} run ${run.instanceId}`);
    // Where the run came from: a retry, a re-run or a schedule.
    let origin = '';
    if (run.retryOf) origin = `attempt ${run.attempt}`;
    else if (run.scheduleId) origin = 'scheduled';
    else if (run.rerunOf) origin = 're-run';
    this.origin.hidden = !origin;
    setText(this.origin, origin);
    this.origin.title = run.retryOf ? `Retry of ${run.retryOf}` : run.scheduleId ? `Started by schedule ${run.scheduleId}` :
      run.rerunOf ? `Re-run of ${run.rerunOf}` : '';
  }

  renderStatus(run) {
    setText(this.statusBadge, run.status);
    this.statusBadge.className = `badge status-${run.status}`;
    this.element.dataset.status = run.status;
    const active = isActive(run);
    this.stopButton.hidden = !active;
    this.stopButton.disabled = run.status === 'stopping';
    setText(this.stopButton, run.status === 'stopping' ? 'Stopping…' : 'Stop');
    this.deleteButton.hidden = active;
    this.rerunButton.hidden = active;
    this.rerunButton.setAttribute('aria-label', `Run ${run.agentName} again`);
    this.stopButton.setAttribute('aria-label', `Stop ${run.agentName} run`);
    this.deleteButton.setAttribute('aria-label', `Delete ${run.agentName} run`);
  }

  renderHost(host) {
    const known = typeof host === 'string' && host !== '';
    this.host.hidden = !known;
    this.hostSep.hidden = !known;
    setText(this.host, known ? host : '');
    this.host.title = known ? `Executed by host ${host}` : '';
  }

  // Token usage of a model-backed run: the total, with the split on hover.
  renderUsage(usage) {
    const known = usage && Number.isFinite(usage.promptTokens) && Number.isFinite(usage.completionTokens);
    this.usage.hidden = !known;
    if (!known) return;
    const total = usage.promptTokens + usage.completionTokens;
    setText(this.usage, `${total.toLocaleString('en-US')} tokens`);
    this.usage.title = `${usage.promptTokens.toLocaleString('en-US')} prompt + ` +
      `${usage.completionTokens.toLocaleString('en-US')} completion tokens`;
  }

  renderProgress(progress) {
    const known = typeof progress === 'number' && Number.isFinite(progress);
    this.progress.hidden = !known;
    if (!known) return;
    const percent = Math.round(Math.min(1, Math.max(0, progress)) * 100);
    this.progressBar.style.width = `${percent}%`;
    this.progress.setAttribute('aria-valuenow', String(percent));
    this.progress.setAttribute('aria-label', `Progress ${percent}%`);
    this.progress.title = `${percent}%`;
  }

  // Active runs tick from the host's durationMs plus the time since we got
  // it, so a skewed local clock does not matter.
  renderDuration() {
    const run = this.run;
    const ticking = run.status === 'running' || run.status === 'stopping';
    const ms = ticking ? run.durationMs + (performance.now() - this.receivedAt) : run.durationMs;
    setText(this.duration, run.status === 'queued' ? 'queued' : formatDuration(ms, ticking));
  }

  get ticking() {
    return this.run.status === 'running' || this.run.status === 'stopping';
  }

  setExpanded(expanded) {
    this.expandButton.setAttribute('aria-expanded', String(expanded));
    this.element.classList.toggle('expanded', expanded);
    this.logSlot.hidden = !expanded;
  }

  // The open log, if any, belongs to the panel: a run that moves from Active
  // to History keeps it (the new row adopts it).
  destroy() {
    this.logView = null;
    this.element.remove();
  }
}
