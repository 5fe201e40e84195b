import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';

import { completionPlugin } from './completionPlugin';
import { LLMuxModel } from './model';
import { LLMuxPanel, LLMuxStatus } from './panel';

/**
 * The LLMux panel and its status-bar item, for the current notebook's kernel.
 *
 * Requires only what every target app provides (JupyterLab 4, Notebook 7): the panel goes to
 * the shell's left area (Notebook 7 offers it under View → Left Sidebar); the status-bar item
 * appears where there is a status bar (JupyterLab).
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: '@llmux/jupyterlab:plugin',
  description:
    'The LLMux panel: the kernel’s loaded models, memory and running generation.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [IStatusBar],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    statusBar: IStatusBar | null
  ) => {
    const model = new LLMuxModel(tracker);
    const panel = new LLMuxPanel(model);
    app.shell.add(panel, 'left', { rank: 600 });
    if (statusBar) {
      const item = new LLMuxStatus(model, () =>
        app.shell.activateById(panel.id)
      );
      statusBar.registerStatusItem('@llmux/jupyterlab:status', {
        item,
        align: 'left',
        rank: 10,
        isActive: () => model.state === 'ready',
        activeStateChanged: model.stateChanged
      });
    }
  }
};

export default [plugin, completionPlugin];
