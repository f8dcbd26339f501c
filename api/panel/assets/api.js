// The REST side of the contract (api.md): every call carries the bearer
// token and turns error bodies into ApiError with the host's code and message.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  // getToken: () => string; onUnauthorized: called on every 401.
  constructor({getToken, onUnauthorized}) {
    this.getToken = getToken;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, body) {
    const headers = {Authorization: `Bearer ${this.getToken()}`, Accept: 'application/json'};
    const init = {method, headers};
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, 'network', `Cannot reach the host (${error.message}). Is nightshift serve running?`);
    }
    if (response.status === 401) this.onUnauthorized();
    if (response.status === 204) return null;
    const text = await response.text();
    let payload = null;
    try {
      payload = text ? JSON.parse(text) : null;
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const error = payload && payload.error ? payload.error : {};
      throw new ApiError(response.status, error.code || `http_${response.status}`,
                         error.message || `The host answered ${response.status} ${response.statusText}.`);
    }
    return payload;
  }

  listRuns({limit = 50, cursor, status, agentId} = {}) {
    const query = new URLSearchParams({limit: String(limit)});
    if (cursor) query.set('cursor', cursor);
    if (status) query.set('status', status);
    if (agentId) query.set('agentId', agentId);
    return this.request('GET', `/background-agents?${query}`);
  }

  logs(instanceId, after, limit) {
    const query = new URLSearchParams({after: String(after), limit: String(limit)});
    return this.request('GET', `/background-agents/${encodeURIComponent(instanceId)}/logs?${query}`);
  }

  start(agentId, task, params) {
    const body = {agentId, params};
    if (task) body.task = task;
    return this.request('POST', '/background-agents/start', body);
  }

  stop(instanceId) {
    return this.request('POST', `/background-agents/${encodeURIComponent(instanceId)}/stop`);
  }

  // A message to a running agent that accepts them; answers {seq}.
  sendMessage(instanceId, text) {
    return this.request('POST', `/background-agents/${encodeURIComponent(instanceId)}/messages`, {text});
  }

  // A finished run started again (same agent, task and params).
  rerun(instanceId) {
    return this.request('POST', `/background-agents/${encodeURIComponent(instanceId)}/rerun`);
  }

  listSchedules() {
    return this.request('GET', '/schedules');
  }

  createSchedule(body) {
    return this.request('POST', '/schedules', body);
  }

  updateSchedule(id, change) {
    return this.request('PATCH', `/schedules/${encodeURIComponent(id)}`, change);
  }

  deleteSchedule(id) {
    return this.request('DELETE', `/schedules/${encodeURIComponent(id)}`);
  }

  triggerSchedule(id) {
    return this.request('POST', `/schedules/${encodeURIComponent(id)}/trigger`);
  }

  listWebhooks() {
    return this.request('GET', '/webhooks');
  }

  createWebhook(body) {
    return this.request('POST', '/webhooks', body);
  }

  deleteWebhook(id) {
    return this.request('DELETE', `/webhooks/${encodeURIComponent(id)}`);
  }

  deliveries(id) {
    return this.request('GET', `/webhooks/${encodeURIComponent(id)}/deliveries`);
  }

  remove(instanceId) {
    return this.request('DELETE', `/background-agents/${encodeURIComponent(instanceId)}`);
  }

  async agents() {
    const payload = await this.request('GET', '/agents');
    return payload.agents || [];
  }
}
