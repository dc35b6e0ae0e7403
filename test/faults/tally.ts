// What many passing schedules went through, summed: shows which paths the faults reached.
import type { ScheduleReport } from './run-schedule.ts';

/** Sums schedule reports. */
export class Tally {
  requests = 0;
  hungUp = 0;
  leased = 0;
  released = 0;
  readonly destroyed = { unusable: 0, obsolete: 0, abandoned: 0 };
  abandonedWaits = 0;
  readonly statuses = new Map<number, number>();

  add({ stats, hungUp, statuses }: ScheduleReport): void {
    this.hungUp += hungUp;
    this.requests += hungUp;
    this.leased += stats.leased;
    this.released += stats.released;
    this.abandonedWaits += stats.abandonedWaits;
    for (const key of ['unusable', 'obsolete', 'abandoned'] as const) this.destroyed[key] += stats.destroyed[key];
    for (const [status, count] of Object.entries(statuses)) {
      this.statuses.set(Number(status), (this.statuses.get(Number(status)) ?? 0) + count);
      this.requests += count;
    }
  }

  describe(): string {
    const answered = [...this.statuses].sort(([a], [b]) => a - b).map(([status, count]) => `${status} ×${count}`).join(', ');
    const { unusable, abandoned } = this.destroyed;
    return `${this.requests} requests: ${answered}, hung up ×${this.hungUp}; leased ${this.leased}, released ${this.released}, ` +
      `destroyed unusable ${unusable} abandoned ${abandoned}; waits abandoned ${this.abandonedWaits}`;
  }
}
