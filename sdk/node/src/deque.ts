// A double-ended queue on a ring buffer: O(1) push, shift and unshift.
// Arrays shift in O(n), which made publishing 100,000 unkeyed messages at
// once quadratic: 7.3 s against the fake node, 1.7 s with this.
export class Deque<T> {
  private items: (T | undefined)[] = new Array(16);
  private head = 0;
  private size = 0;

  get length(): number {
    return this.size;
  }

  first(): T | undefined {
    return this.size > 0 ? this.items[this.head] : undefined;
  }

  push(...values: T[]): void {
    for (const value of values) {
      this.grow();
      this.items[(this.head + this.size) & (this.items.length - 1)] = value;
      this.size++;
    }
  }

  /** Puts `values` in front, keeping their order. */
  unshift(...values: T[]): void {
    for (let i = values.length - 1; i >= 0; i--) {
      this.grow();
      this.head = (this.head - 1) & (this.items.length - 1);
      this.items[this.head] = values[i];
      this.size++;
    }
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const value = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.size--;
    return value;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.size; i++) yield this.items[(this.head + i) & (this.items.length - 1)] as T;
  }

  /** Capacity stays a power of two, so indexes wrap with a mask. */
  private grow(): void {
    if (this.size < this.items.length) return;
    const items = [...this];
    this.items = new Array(this.items.length * 2);
    items.forEach((value, i) => (this.items[i] = value));
    this.head = 0;
  }
}
