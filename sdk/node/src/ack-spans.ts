// Acks of messages in a batch's receipt runs: one ReceiptSpan per contiguous
// acked piece of a run instead of a receipt per message. A lone message, or
// one in no run, goes by its receipt (no smaller as a span, and cheaper for
// the node to apply), as the C++ and Python SDKs do.
import type { Acks, ReceiptRun, ReceiptSpan } from './wire';

/** A MessageBatch.runs entry; `seq` orders the runs of one stream. */
export interface RunRef { readonly token: Buffer; readonly seq: number }

/** Where a delivered message sits in its run. */
export interface RunPlace { readonly run: RunRef; readonly index: number }

/**
 * Each message's place in the batch's runs (null: in none). A run that is
 * empty, reaches past the batch or overlaps an earlier one is ignored: its
 * messages are acked by receipt. `counter.seq` numbers the runs.
 */
export function placeInRuns(count: number, runs: ReceiptRun[] | undefined, counter: { seq: number }): (RunPlace | null)[] {
  const places: (RunPlace | null)[] = new Array(count).fill(null);
  for (const r of runs ?? []) {
    const first = r.first_message;
    const end = first + r.count;
    if (r.count === 0 || end > count || places.slice(first, end).some((p) => p !== null)) continue;
    const run = { token: r.run, seq: ++counter.seq };
    for (let i = 0; i < r.count; i++) places[first + i] = { run, index: i };
  }
  return places;
}

/** Messages [first, first + count) of run, or with run null the one message of `receipt`. */
interface Piece { run: RunRef | null; first: number; count: number; receipt: Buffer }

/**
 * A stream's acks until they are sent. add is O(1) (an ack that continues
 * the last piece of its run grows it); take sorts the pieces when messages
 * were acked out of order.
 */
export class PendingAcks {
  private pieces: Piece[] = [];
  messages = 0;

  add(place: RunPlace | null, receipt: Buffer): void {
    this.messages++;
    if (place) {
      const last = this.pieces[this.pieces.length - 1];
      if (last && last.run === place.run && last.first + last.count === place.index) {
        last.count++;
        return;
      }
      this.pieces.push({ run: place.run, first: place.index, count: 1, receipt });
    } else {
      this.pieces.push({ run: null, first: 0, count: 1, receipt });
    }
  }

  /** The queued acks (null: none), every contiguous acked piece of a run as one span; empties it. */
  take(): Acks | null {
    if (this.messages === 0) return null;
    const pieces = this.pieces;
    this.pieces = [];
    this.messages = 0;
    if (!isSorted(pieces)) pieces.sort(compare); // Array.prototype.sort is stable
    const receipts: Buffer[] = [];
    const spans: ReceiptSpan[] = [];
    for (let i = 0; i < pieces.length;) {
      const { run, first, receipt } = pieces[i];
      let count = pieces[i].count;
      i++;
      while (run && i < pieces.length && pieces[i].run === run && pieces[i].first === first + count) {
        count += pieces[i].count;
        i++;
      }
      if (run && count > 1) spans.push({ run: run.token, first, count });
      else receipts.push(receipt);
    }
    return { receipts, spans };
  }
}

/** By run, then position; receipts of messages in no run ahead, in ack order. */
function compare(a: Piece, b: Piece): number {
  if (!a.run || !b.run) return (a.run ? 1 : 0) - (b.run ? 1 : 0);
  return a.run === b.run ? a.first - b.first : a.run.seq - b.run.seq;
}

function isSorted(pieces: Piece[]): boolean {
  for (let i = 1; i < pieces.length; i++) if (compare(pieces[i - 1], pieces[i]) > 0) return false;
  return true;
}
