import {
  CompletionHandler,
  IInlineCompletionContext,
  IInlineCompletionItem,
  IInlineCompletionList,
  IInlineCompletionProvider
} from '@jupyterlab/completer';
import { NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { Widget } from '@lumino/widgets';

import { CompletionStream, KernelCompletion } from './completionClient';

/** Our provider's id: its settings live under it in the Inline Completer's settings. */
export const PROVIDER_ID = '@llmux/jupyterlab:inline-completion';

/** The provider's settings and their defaults (JupyterLab adds `enabled`, `timeout`,
 * `debouncerDelay` and `autoFillInMiddle` for every provider; these defaults are ours). */
const DEFAULTS = {
  enabled: true,
  debouncerDelay: 300,
  timeout: 20000,
  maxTokens: 64,
  contextCells: 20
};
/** Characters of the cells above sent at most (the kernel fits them to the model). */
const MAX_CONTEXT_CHARS = 16000;

const SCHEMA: ISettingRegistry.IProperty = {
  default: DEFAULTS,
  properties: {
    maxTokens: {
      title: 'Max tokens',
      description:
        'Most tokens the kernel’s code model generates for one completion (it stops sooner at the end of the line or block).',
      type: 'number',
      minimum: 1,
      maximum: 512
    },
    contextCells: {
      title: 'Cells above as context',
      description:
        'How many code cells above the current one go into the prompt (the kernel cuts them to fit the model’s window).',
      type: 'number',
      minimum: 0,
      maximum: 50
    }
  }
};

/**
 * Ghost text from the kernel's own code model (`%llm complete --model NAME`), in JupyterLab
 * and Notebook 7: no server extension, no API key. Streams; a newer keystroke's request
 * cancels the running generation in the kernel. While a cell runs, nothing is asked.
 */
export class LLMuxInlineProvider implements IInlineCompletionProvider {
  readonly name = 'LLMux (kernel model)';
  readonly identifier = PROVIDER_ID;
  readonly schema = SCHEMA;

  configure(settings: { [property: string]: unknown }): void {
    this._enabled = settings.enabled !== false;
    this._debounce = Number(settings.debouncerDelay ?? DEFAULTS.debouncerDelay);
    this._maxTokens = Number(settings.maxTokens ?? DEFAULTS.maxTokens);
    this._contextCells = Number(settings.contextCells ?? DEFAULTS.contextCells);
  }

  /** Whether the user has this provider on (Settings → Inline Completer). */
  get enabled(): boolean {
    return this._enabled;
  }

  /** Milliseconds to wait after a keystroke before asking. */
  get debounce(): number {
    return this._debounce;
  }

  /** Whether `kernel` would complete now: connected, a model set, no cell running. */
  async completes(kernel: Kernel.IKernelConnection): Promise<boolean> {
    const client = this._client(kernel);
    return !client.executing && (await client.connect()) && !!client.model;
  }

  async fetch(
    request: CompletionHandler.IRequest,
    context: IInlineCompletionContext
  ): Promise<IInlineCompletionList> {
    const kernel = context.session?.kernel;
    if (!kernel) {
      return { items: [] };
    }
    if (!(await this.completes(kernel))) {
      return { items: [] }; // a cell runs ("busy"), no extension, or completion is off
    }
    const client = this._client(kernel);
    const stream = client.request({
      before: request.text.slice(0, request.offset),
      after: request.text.slice(request.offset),
      context: this._cellsAbove(context.widget),
      max_tokens: this._maxTokens
    });
    if (!stream || !(await stream.started())) {
      if (stream?.end?.reason === 'error') {
        console.warn(`LLMux completion: ${stream.end.error}`);
      }
      return { items: [] };
    }
    const item: IInlineCompletionItem = {
      insertText: stream.text,
      isIncomplete: stream.end === null
    };
    if (item.isIncomplete) {
      item.token = String(stream.id);
      this._streams.set(item.token, stream);
    }
    return { items: [item] };
  }

  async *stream(
    token: string
  ): AsyncGenerator<{ response: IInlineCompletionItem }> {
    const stream = this._streams.get(token);
    this._streams.delete(token);
    if (!stream) {
      return;
    }
    for await (const text of stream.updates()) {
      yield { response: { insertText: text, isIncomplete: true } };
    }
  }

  /** The sources of the code cells above the active one (a notebook's), oldest first. */
  private _cellsAbove(widget: Widget): string[] {
    if (!(widget instanceof NotebookPanel) || this._contextCells <= 0) {
      return [];
    }
    const notebook = widget.content;
    const cells = notebook.widgets
      .slice(0, Math.max(notebook.activeCellIndex, 0))
      .filter(cell => cell.model.type === 'code')
      .map(cell => cell.model.sharedModel.getSource())
      .slice(-this._contextCells);
    let total = 0;
    let first = cells.length;
    while (first > 0 && total + cells[first - 1].length <= MAX_CONTEXT_CHARS) {
      first -= 1;
      total += cells[first].length;
    }
    return cells.slice(first);
  }

  private _client(kernel: Kernel.IKernelConnection): KernelCompletion {
    let client = this._clients.get(kernel);
    if (!client) {
      const created = new KernelCompletion(kernel);
      this._clients.set(kernel, created);
      kernel.disposed.connect(() => {
        created.dispose();
        this._clients.delete(kernel);
      });
      client = created;
    }
    return client;
  }

  private _enabled = DEFAULTS.enabled;
  private _debounce = DEFAULTS.debouncerDelay;
  private _maxTokens = DEFAULTS.maxTokens;
  private _contextCells = DEFAULTS.contextCells;
  private _clients = new Map<Kernel.IKernelConnection, KernelCompletion>();
  private _streams = new Map<string, CompletionStream>();
}
