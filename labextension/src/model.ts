import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { VDomModel } from '@jupyterlab/ui-components';

import {
  IGeneration,
  IModelStatus,
  IReplyMessage,
  ISnapshot,
  LLMuxMessage,
  Request,
  TARGET
} from './protocol';
import { executionState } from './kernelStatus';

/**
 * Where the sidebar stands with the current notebook's kernel.
 */
export type ConnectionState =
  | 'no-notebook'
  | 'no-kernel'
  | 'connecting'
  | 'not-loaded'
  | 'restarting'
  | 'ready';

/** Kernel states that mean a restarted kernel is back. */
const BACK: Kernel.Status[] = ['starting', 'idle', 'busy'];

interface IPending {
  resolve: (reply: IReplyMessage) => void;
  reject: (error: Error) => void;
}

/**
 * The kernel side of the current notebook, as the panel and the status bar show it.
 *
 * Follows the notebook tracker, the notebook's kernel changes and its restarts. The front end
 * opens every "llmux" comm; the kernel never opens one. A kernel with the extension loaded
 * answers with snapshots, one without it closes the comm at once ("not loaded"). While not
 * loaded, the model opens a comm again each time an execution finishes: that is how it notices
 * a later `%load_ext llmux_jupyter`.
 */
export class LLMuxModel extends VDomModel {
  constructor(tracker: INotebookTracker) {
    super();
    tracker.currentChanged.connect(this._onNotebook, this);
    this._onNotebook(tracker, tracker.currentWidget);
  }

  get state(): ConnectionState {
    return this._state;
  }

  get snapshot(): ISnapshot | null {
    return this._snapshot;
  }

  get generation(): IGeneration | null {
    return this._generation;
  }

  /** The last rejected request or failed operation, until dismissed. */
  get error(): string | null {
    return this._error;
  }

  get notebookName(): string {
    return this._panel?.title.label ?? '';
  }

  get loadedModels(): IModelStatus[] {
    return this._snapshot?.models.filter(model => model.loaded) ?? [];
  }

  /** Bytes the loaded models hold: measured where known, else estimated. */
  get memoryHeld(): number {
    return this.loadedModels.reduce(
      (sum, model) => sum + (model.measured ?? model.estimate ?? 0),
      0
    );
  }

  /** The kernel's clock now (Unix seconds), for keep-alive countdowns. */
  kernelNow(): number {
    return Date.now() / 1000 + this._clockOffset;
  }

  /** Whether a request about `model` awaits its reply. */
  isPending(model: string): boolean {
    return this._pendingModels.has(model);
  }

  /** Send a request; resolves with the kernel's reply (which may be a rejection). */
  request(request: Request): Promise<IReplyMessage> {
    const comm = this._comm;
    if (!comm || this._state !== 'ready') {
      return Promise.reject(
        new Error('LLMux is not connected to this kernel.')
      );
    }
    const id = ++this._nextId;
    return new Promise<IReplyMessage>((resolve, reject) => {
      this._pending.set(id, { resolve, reject });
      comm.send({ ...request, id });
    });
  }

  /** A button's request: shows it pending, and keeps the error of a rejection. */
  async perform(request: Request): Promise<void> {
    const model = 'model' in request ? request.model : '';
    this._pendingModels.add(model);
    this.stateChanged.emit();
    try {
      const reply = await this.request(request);
      this._error = reply.ok ? null : (reply.error ?? 'The kernel refused.');
    } catch (error) {
      this._error = String(error);
    } finally {
      this._pendingModels.delete(model);
      this.stateChanged.emit();
    }
  }

  dismissError(): void {
    this._error = null;
    this.stateChanged.emit();
  }

  /** Ask the kernel again (after `%load_ext`, or to refresh). */
  reconnect(): void {
    this._open();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._closeComm(true);
    this._kernel?.statusChanged.disconnect(this._onStatus, this);
    this._kernel?.iopubMessage.disconnect(this._onIOPub, this);
    this._panel?.sessionContext.kernelChanged.disconnect(
      this._onKernelChanged,
      this
    );
    super.dispose();
  }

  private _onNotebook(_: unknown, panel: NotebookPanel | null): void {
    if (panel === this._panel) {
      return;
    }
    this._panel?.sessionContext.kernelChanged.disconnect(
      this._onKernelChanged,
      this
    );
    this._panel = panel;
    panel?.sessionContext.kernelChanged.connect(this._onKernelChanged, this);
    this._setKernel(panel?.sessionContext.session?.kernel ?? null);
  }

  private _onKernelChanged(
    _: unknown,
    change: { newValue: Kernel.IKernelConnection | null }
  ): void {
    this._setKernel(change.newValue);
  }

  private _setKernel(kernel: Kernel.IKernelConnection | null): void {
    if (kernel === this._kernel && kernel !== null) {
      return;
    }
    this._closeComm(true);
    this._kernel?.statusChanged.disconnect(this._onStatus, this);
    this._kernel?.iopubMessage.disconnect(this._onIOPub, this);
    this._kernel = kernel;
    if (!kernel) {
      this._setState(this._panel ? 'no-kernel' : 'no-notebook');
      return;
    }
    kernel.statusChanged.connect(this._onStatus, this);
    kernel.iopubMessage.connect(this._onIOPub, this);
    this._open();
  }

  private _onStatus(_: Kernel.IKernelConnection, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting') {
      this._closeComm(false); // the restart disposes the comms
      this._setState('restarting');
    } else if (status === 'dead') {
      this._closeComm(false);
      this._setState('no-kernel');
    } else if (BACK.includes(status) && this._state === 'restarting') {
      // Back: the comm open waits in the connection's queue until the kernel can take it
      // (and is what makes a quiet restarted kernel report its status at all).
      this._open();
    }
  }

  /** An execution finished (from any client of the kernel): it may have run `%load_ext`. */
  private _onIOPub(
    _: Kernel.IKernelConnection,
    message: KernelMessage.IIOPubMessage
  ): void {
    if (
      this._state === 'not-loaded' &&
      executionState(message)?.state === 'idle'
    ) {
      this._open();
    }
  }

  private _open(): void {
    const kernel = this._kernel;
    this._closeComm(true);
    if (!kernel) {
      return;
    }
    this._setState('connecting');
    try {
      const comm = kernel.createComm(TARGET);
      comm.onMsg = msg =>
        this._onMessage(comm, msg.content.data as unknown as LLMuxMessage);
      comm.onClose = () => this._onClosed(comm);
      this._comm = comm;
      comm.open({});
    } catch (error) {
      this._comm = null;
      this._error = `Cannot open a comm to the kernel: ${error}`;
      this._setState('no-kernel');
    }
  }

  private _onMessage(comm: Kernel.IComm, message: LLMuxMessage): void {
    if (comm !== this._comm) {
      return;
    }
    if (message.type === 'snapshot') {
      this._snapshot = message.snapshot;
      this._generation = message.generation;
      this._clockOffset = message.snapshot.time - Date.now() / 1000;
      this._setState('ready', true);
    } else if (message.type === 'reply' && message.id !== null) {
      this._pending.get(message.id)?.resolve(message);
      this._pending.delete(message.id);
    }
  }

  /** The kernel closed the comm: no target ("not loaded"), or `%unload_ext`. */
  private _onClosed(comm: Kernel.IComm): void {
    if (comm === this._comm) {
      this._comm = null;
      this._forget();
      this._setState('not-loaded');
    }
  }

  private _closeComm(sendClose: boolean): void {
    const comm = this._comm;
    this._comm = null;
    this._forget();
    if (comm && sendClose && !comm.isDisposed) {
      try {
        comm.close();
      } catch {
        // The kernel connection is already gone: nothing to tell it.
      }
    }
  }

  private _forget(): void {
    this._snapshot = null;
    this._generation = null;
    for (const pending of this._pending.values()) {
      pending.reject(new Error('The connection to the kernel closed.'));
    }
    this._pending.clear();
  }

  private _setState(state: ConnectionState, always = false): void {
    if (state !== this._state || always) {
      this._state = state;
      this.stateChanged.emit();
    }
  }

  private _state: ConnectionState = 'no-notebook';
  private _panel: NotebookPanel | null = null;
  private _kernel: Kernel.IKernelConnection | null = null;
  private _comm: Kernel.IComm | null = null;
  private _snapshot: ISnapshot | null = null;
  private _generation: IGeneration | null = null;
  private _clockOffset = 0;
  private _error: string | null = null;
  private _nextId = 0;
  private _pending = new Map<number, IPending>();
  private _pendingModels = new Set<string>();
}
