import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';

import { LLMuxModel } from './model';
import { LLMuxPanel, LLMuxStatus } from './panel';

/**
 * The LLMux sidebar and its status-bar item, for the current notebook's kernel.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: '@llmux/jupyterlab:plugin',
  description:
    'The LLMux sidebar: the kernel’s loaded models, memory and running generation.',
  autoStart: true,
  requires: [ILabShell, INotebookTracker],
  optional: [IStatusBar],
  activate: (
    _app: JupyterFrontEnd,
    shell: ILabShell,
    tracker: INotebookTracker,
    statusBar: IStatusBar | null
  ) => {
    const model = new LLMuxModel(tracker);
    const panel = new LLMuxPanel(model);
    shell.add(panel, 'left', { rank: 600 });
    if (statusBar) {
      const item = new LLMuxStatus(model, () => shell.activateById(panel.id));
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

export default plugin;
