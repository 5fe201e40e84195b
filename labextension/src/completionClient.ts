import { Kernel, KernelMessage } from '@jupyterlab/services';

import {
  COMPLETION_TARGET,
  CompletionMessage,
  ICompleteRequest,
  IEndMessage
} from './completionProtocol';
import { executionState } from './kernelStatus';

/** How long to wait for the kernel to answer a new comm (its status) or a subshell. */
const OPEN_TIMEOUT_MS = 5000;

/** Resolves with `promise`'s value, or with `fallback` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>(resolve => setTimeout(() => resolve(fallback), ms))
  ]);
}

/**
 * One request's ghost text as it streams from the kernel.
 */
export class CompletionStream {
  constructor(readonly id: number) {}

  /** The text so far. */
  text = '';
  /** The kernel's end message, once the request is over. */
  end: IEndMessage | null = null;

  push(delta: string): void {
    this.text += delta;
    this._notify();
  }

  finish(end: IEndMessage): void {
    this.end = end;
    this._notify();
  }

  /** Resolves with whether text came before the request ended. */
  async started(): Promise<boolean> {
    while (!this.text && !this.end) {
      await this._changed();
    }
    return this.text !== '';
  }

  /** The whole text each time it grows, until the request ends. */
  async *updates(): AsyncGenerator<string> {
    let sent = this.text.length;
    while (!this.end) {
      await this._changed();
      if (this.text.length > sent) {
        sent = this.text.length;
        yield this.text;
      }
    }
  }

  private _changed(): Promise<void> {
    return new Promise(resolve => this._waiters.push(resolve));
  }

  private _notify(): void {
    const waiters = this._waiters;
    this._waiters = [];
    waiters.forEach(resolve => resolve());
  }

  private _waiters: Array<() => void> = [];
}

/**
 * Code completion from one kernel: its "llmux-complete" comm, its completion model, and
 * whether a cell runs there now.
 *
 * While a cell executes (seen from the kernel's IOPub status messages, whoever ran it) no
 * request is sent: the answer is "busy" at once, here. A kernel that has subshells (ipykernel
 * 7, JupyterLab 4.4+) gets our comm's messages on a subshell of their own, so even a request
 * sent just before a cell started is answered at once by the kernel.
 */
export class KernelCompletion {
  constructor(readonly kernel: Kernel.IKernelConnection) {
    kernel.iopubMessage.connect(this._onIOPub, this);
    kernel.statusChanged.connect(this._onStatus, this);
  }

  /** The kernel's completion model; null while completion is off or not known. */
  get model(): string | null {
    return this._model;
  }

  /** Whether a cell runs in the kernel now. */
  get executing(): boolean {
    return this._executing.size > 0;
  }

  /** Opens the comm if needed; resolves with whether the kernel answers on it. */
  async connect(): Promise<boolean> {
    if (!this._opening) {
      this._opening = this._open();
    }
    return this._opening;
  }

  /** Send a request; null when there is no connection. */
  request(
    fields: Omit<ICompleteRequest, 'op' | 'id'>
  ): CompletionStream | null {
    const comm = this._comm;
    if (!comm || comm.isDisposed) {
      return null;
    }
    const stream = new CompletionStream(++this._nextId);
    this._streams.set(stream.id, stream);
    const request: ICompleteRequest = {
      op: 'complete',
      id: stream.id,
      ...fields
    };
    comm.send(request as unknown as Parameters<Kernel.IComm['send']>[0]);
    return stream;
  }

  dispose(): void {
    this.kernel.iopubMessage.disconnect(this._onIOPub, this);
    this.kernel.statusChanged.disconnect(this._onStatus, this);
    this._forget();
  }

  private async _open(): Promise<boolean> {
    const kernel = this.kernel;
    await kernel.info;
    let comm: Kernel.IComm;
    try {
      comm = kernel.createComm(COMPLETION_TARGET);
    } catch {
      return false; // this connection does not handle comms
    }
    const status = new Promise<boolean>(resolve => {
      comm.onMsg = msg => {
        this._onMessage(msg.content.data as unknown as CompletionMessage);
        resolve(true);
      };
      comm.onClose = () => {
        if (this._comm === comm) {
          this._comm = null; // no target (the extension is not loaded) or %unload_ext
          this._forget();
        }
        resolve(false);
      };
    });
    const subshell = (comm as unknown as { subshellStarted?: Promise<void> })
      .subshellStarted;
    if (kernel.supportsSubshells && subshell) {
      await within(subshell, OPEN_TIMEOUT_MS, undefined);
    }
    this._comm = comm;
    comm.open({});
    const answered = await within(status, OPEN_TIMEOUT_MS, false);
    if (!answered && this._comm === comm) {
      this._forget();
    }
    return answered;
  }

  private _onMessage(message: CompletionMessage): void {
    if (message.type === 'status') {
      this._model = message.model;
      return;
    }
    const stream = this._streams.get(message.id);
    if (!stream) {
      return;
    }
    if (message.type === 'delta') {
      stream.push(message.text);
    } else {
      this._streams.delete(message.id);
      stream.finish(message);
    }
  }

  /** Track the cells executing, and notice a later `%load_ext` once one finishes. */
  private _onIOPub(
    _: Kernel.IKernelConnection,
    message: KernelMessage.IIOPubMessage
  ): void {
    const execution = executionState(message);
    if (execution?.state === 'busy') {
      this._executing.add(execution.id);
    } else if (execution?.state === 'idle') {
      this._executing.delete(execution.id);
      if (!this._comm) {
        this._opening = null; // try again at the next request
      }
    }
  }

  private _onStatus(_: Kernel.IKernelConnection, status: Kernel.Status): void {
    if (['restarting', 'autorestarting', 'dead'].includes(status)) {
      this._executing.clear();
      this._forget();
      this._opening = null;
    }
  }

  /** Drop the comm and end every open request. */
  private _forget(): void {
    const comm = this._comm;
    this._comm = null;
    this._model = null;
    if (comm && !comm.isDisposed) {
      try {
        comm.close();
      } catch {
        // The kernel connection is already gone.
      }
    }
    for (const stream of this._streams.values()) {
      stream.finish({
        type: 'end',
        id: stream.id,
        reason: 'cancelled',
        text: stream.text
      });
    }
    this._streams.clear();
  }

  private _comm: Kernel.IComm | null = null;
  private _opening: Promise<boolean> | null = null;
  private _model: string | null = null;
  private _executing = new Set<string>();
  private _streams = new Map<number, CompletionStream>();
  private _nextId = 0;
}
