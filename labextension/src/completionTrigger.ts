import { JupyterFrontEnd } from '@jupyterlab/application';
import { INotebookTracker } from '@jupyterlab/notebook';

import { LLMuxInlineProvider } from './completionProvider';

type Cell = INotebookTracker['activeCell'];

/** JupyterLab's command that asks the inline completer for a suggestion now. */
const INVOKE = 'inline-completer:invoke';

/**
 * Asks for a completion after a line break that leaves the cursor on an indented blank line
 * below code (`def fibonacci(n):` + Enter). JupyterLab's inline completer does not trigger
 * on a line of only whitespace by itself; this invokes it there, after the provider's
 * debouncer delay, when the cell has not changed since, our provider is enabled and the
 * kernel completes.
 */
export class LineBreakTrigger {
  constructor(
    private readonly _tracker: INotebookTracker,
    private readonly _commands: JupyterFrontEnd['commands'],
    private readonly _provider: LLMuxInlineProvider
  ) {
    _tracker.activeCellChanged.connect(this._onActiveCell, this);
    this._onActiveCell(_tracker, _tracker.activeCell);
  }

  private _onActiveCell(_: unknown, cell: Cell): void {
    this._cell?.model.sharedModel.changed.disconnect(this._onChange, this);
    this._cell = cell;
    cell?.model.sharedModel.changed.connect(this._onChange, this);
  }

  private _onChange(): void {
    const cell = this._cell;
    const editor = cell?.editor;
    if (!cell || !editor || !this._provider.enabled) {
      return;
    }
    const source = cell.model.sharedModel.getSource();
    const position = editor.getCursorPosition();
    const line = editor.getLine(position.line) ?? '';
    const above =
      position.line > 0 ? (editor.getLine(position.line - 1) ?? '') : '';
    const blankLineBelowCode =
      line.slice(0, position.column).trim() === '' &&
      line.slice(position.column).trim() === '' &&
      above.trim() !== '';
    if (!blankLineBelowCode || source === this._asked) {
      return;
    }
    const kernel = this._tracker.currentWidget?.sessionContext.session?.kernel;
    window.setTimeout(async () => {
      if (
        this._cell !== cell ||
        cell.model.sharedModel.getSource() !== source ||
        !editor.hasFocus() ||
        !kernel ||
        !(await this._provider.completes(kernel))
      ) {
        return;
      }
      this._asked = source;
      await this._commands.execute(INVOKE);
    }, this._provider.debounce);
  }

  private _cell: Cell = null;
  private _asked: string | null = null;
}
