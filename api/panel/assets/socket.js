// The live side of the contract: one WebSocket to /background-agent-ws that
// reconnects with backoff, checks every message's `seq` (a gap means we
// missed something, so we reconnect and resync from the fresh snapshot), and
// re-sends log subscriptions after each snapshot.

const BACKOFF_STEPS_MS = [500, 1000, 2000, 4000, 8000, 15000];
const PING_INTERVAL_MS = 20000;

export class LiveConnection {
  // handlers: onMessage(msg), onState(state, detail), onRefused() when the
  // socket closes without ever opening (wrong token, host down),
  // subscriptionAfter(instanceId) -> the last log seq already shown.
  constructor({getToken, handlers}) {
    this.getToken = getToken;
    this.handlers = handlers;
    this.socket = null;
    this.expectedSeq = 1;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.subscriptions = new Set();
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.closeSocket();
    this.handlers.onState('idle');
  }

  // Reconnect now (a new token, or a gap in seq).
  restart() {
    clearTimeout(this.retryTimer);
    this.closeSocket();
    this.running = true;
    this.connect();
  }

  subscribe(instanceId, after) {
    this.subscriptions.add(instanceId);
    this.send({type: 'subscribe', instanceId, after});
  }

  unsubscribe(instanceId) {
    if (!this.subscriptions.delete(instanceId)) return;
    this.send({type: 'unsubscribe', instanceId});
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN && this.synced) {
      this.socket.send(JSON.stringify(message));
    }
  }

  connect() {
    const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${window.location.host}/background-agent-ws?token=${encodeURIComponent(this.getToken())}`;
    this.handlers.onState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    this.expectedSeq = 1;
    this.synced = false;
    let opened = false;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.addEventListener('open', () => {
      opened = true;
    });
    socket.addEventListener('message', (event) => {
      if (this.socket === socket) this.receive(event.data);
    });
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.synced = false;
      clearInterval(this.pingTimer);
      if (!this.running) return;
      if (!opened) this.handlers.onRefused();
      this.scheduleReconnect(event.code === 1013 ? 'the host dropped a slow connection' : 'connection lost');
    });
  }

  receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      console.warn('panel: ignored a WebSocket message that is not JSON');
      return;
    }
    if (message.seq !== this.expectedSeq) {
      console.warn(`panel: WebSocket seq ${message.seq}, expected ${this.expectedSeq}; resyncing`);
      this.restart();
      return;
    }
    this.expectedSeq += 1;
    if (message.type === 'snapshot') {
      this.attempt = 0;
      this.synced = true;
      this.handlers.onState('live');
      this.handlers.onMessage(message);
      for (const instanceId of this.subscriptions) {
        this.send({type: 'subscribe', instanceId, after: this.handlers.subscriptionAfter(instanceId)});
      }
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.send({type: 'ping'}), PING_INTERVAL_MS);
      return;
    }
    this.handlers.onMessage(message);
  }

  scheduleReconnect(reason) {
    const base = BACKOFF_STEPS_MS[Math.min(this.attempt, BACKOFF_STEPS_MS.length - 1)];
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.attempt += 1;
    this.handlers.onState('waiting', {reason, retryAt: Date.now() + delay});
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  closeSocket() {
    clearInterval(this.pingTimer);
    const socket = this.socket;
    this.socket = null;
    this.synced = false;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000, 'client closing');
  }
}
