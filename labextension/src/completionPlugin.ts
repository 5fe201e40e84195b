import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICompletionProviderManager } from '@jupyterlab/completer';
import { INotebookTracker } from '@jupyterlab/notebook';

import { LLMuxInlineProvider } from './completionProvider';
import { LineBreakTrigger } from './completionTrigger';

/**
 * Code completion as you type from the kernel's code model, through JupyterLab's inline
 * completer (JupyterLab ≥ 4.1, Notebook 7): ghost text, Tab accepts, Escape dismisses, also
 * on the indented blank line after Enter. Its settings are the provider's entry in
 * Settings → Inline Completer.
 */
export const completionPlugin: JupyterFrontEndPlugin<void> = {
  id: '@llmux/jupyterlab:completion',
  description:
    'Ghost-text code completion from a code model running in the kernel (%llm complete).',
  autoStart: true,
  requires: [ICompletionProviderManager, INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    manager: ICompletionProviderManager,
    tracker: INotebookTracker
  ) => {
    const provider = new LLMuxInlineProvider();
    manager.registerInlineProvider(provider);
    new LineBreakTrigger(tracker, app.commands, provider);
  }
};
