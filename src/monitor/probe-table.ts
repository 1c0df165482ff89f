/**
 * The Prober's pending probes by tag: a ring indexed by the tag's low bits.
 *
 * Tags are handed out in sequence, so live probes occupy a window of consecutive tags and a
 * ring at least as long as that window never collides; a collision (more probes in flight
 * than the ring holds) doubles it. Unlike a Map keyed by number, it allocates nothing per
 * probe and never rehashes while probes come and go (10k probes/s made the Map's churn one
 * of the Prober's main user-CPU costs).
 */
export interface TaggedProbe {
  readonly tag: number;
}

export class ProbeTable<P extends TaggedProbe> {
  private ring: Array<P | undefined>;
  private mask: number;
  private live = 0;

  constructor(initialSize = 1024) {
    let size = 1;
    while (size < initialSize) size *= 2;
    this.ring = new Array<P | undefined>(size).fill(undefined);
    this.mask = size - 1;
  }

  get size(): number {
    return this.live;
  }

  get(tag: number): P | undefined {
    const p = this.ring[tag & this.mask];
    return p !== undefined && p.tag === tag ? p : undefined;
  }

  set(probe: P): void {
    while (this.ring[probe.tag & this.mask] !== undefined) this.grow();
    this.ring[probe.tag & this.mask] = probe;
    this.live++;
  }

  delete(tag: number): void {
    const i = tag & this.mask;
    const p = this.ring[i];
    if (p === undefined || p.tag !== tag) return;
    this.ring[i] = undefined;
    this.live--;
  }

  /** The pending probes, in no particular order (a copy: safe to delete while iterating). */
  values(): P[] {
    const out: P[] = [];
    for (const p of this.ring) if (p !== undefined) out.push(p);
    return out;
  }

  clear(): void {
    this.ring.fill(undefined);
    this.live = 0;
  }

  private grow(): void {
    const size = this.ring.length * 2;
    const ring = new Array<P | undefined>(size).fill(undefined);
    const mask = size - 1;
    for (const p of this.ring) if (p !== undefined) ring[p.tag & mask] = p;
    this.ring = ring;
    this.mask = mask;
  }
}
