// A list of RunRows kept in order by a comparator, updated by key. Changes
// are queued and applied once per animation frame; only the rows that
// changed are touched, so 1,000 runs with a stream of events stay cheap.

export class KeyedList {
  // compare(a, b): negative when run a goes before run b.
  constructor({container, compare, createRow, scheduler, name, onChange}) {
    this.container = container;
    this.compare = compare;
    this.createRow = createRow;
    this.scheduler = scheduler;
    this.name = name;
    this.onChange = onChange;
    this.rows = new Map();  // instanceId -> RunRow
    this.order = [];        // RunRows in display order
    this.pending = new Map();  // instanceId -> Run, or null to remove
  }

  get size() {
    let size = this.rows.size;
    for (const [id, run] of this.pending) {
      if (run === null && this.rows.has(id)) size -= 1;
      if (run !== null && !this.rows.has(id)) size += 1;
    }
    return size;
  }

  has(id) {
    return this.pending.has(id) ? this.pending.get(id) !== null : this.rows.has(id);
  }

  // The run as it will be after pending changes.
  get(id) {
    if (this.pending.has(id)) return this.pending.get(id);
    const row = this.rows.get(id);
    return row ? row.run : null;
  }

  ids() {
    const ids = new Set(this.rows.keys());
    for (const [id, run] of this.pending) {
      if (run === null) ids.delete(id);
      else ids.add(id);
    }
    return ids;
  }

  upsert(run) {
    this.pending.set(run.instanceId, run);
    this.scheduler.schedule(this, () => this.flush());
  }

  remove(id) {
    if (!this.has(id)) return;
    this.pending.set(id, null);
    this.scheduler.schedule(this, () => this.flush());
  }

  clear() {
    for (const id of this.ids()) this.remove(id);
  }

  row(id) {
    return this.rows.get(id);
  }

  forEachRow(fn) {
    for (const row of this.order) fn(row);
  }

  flush() {
    const changes = [...this.pending];
    this.pending.clear();
    for (const [id, run] of changes) {
      if (run === null) this.removeNow(id);
      else this.upsertNow(run);
    }
    if (this.onChange) this.onChange(this);
  }

  upsertNow(run) {
    const existing = this.rows.get(run.instanceId);
    if (existing) {
      existing.update(run);
      return;
    }
    const row = this.createRow(run);
    this.rows.set(run.instanceId, row);
    const index = this.insertionIndex(run);
    const next = this.order[index];
    this.order.splice(index, 0, row);
    this.container.insertBefore(row.element, next ? next.element : null);
  }

  removeNow(id) {
    const row = this.rows.get(id);
    if (!row) return;
    this.rows.delete(id);
    const index = this.order.indexOf(row);
    if (index >= 0) this.order.splice(index, 1);
    row.destroy();
  }

  // Binary search: runs are nearly always inserted at the top, but loading
  // older pages appends, and both are O(log n) here.
  insertionIndex(run) {
    let low = 0;
    let high = this.order.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.compare(this.order[middle].run, run) <= 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

function byTimeDescending(field) {
  return (a, b) => {
    const difference = Date.parse(b[field] || b.createdAt) - Date.parse(a[field] || a.createdAt);
    if (difference !== 0 && !Number.isNaN(difference)) return difference;
    return a.instanceId < b.instanceId ? 1 : a.instanceId > b.instanceId ? -1 : 0;
  };
}

export const newestCreatedFirst = byTimeDescending('createdAt');
export const newestEndedFirst = byTimeDescending('endedAt');
