import { KernelMessage } from '@jupyterlab/services';

/** A cell execution's start or end, as the kernel's IOPub status messages tell it. */
export interface IExecutionState {
  /** The execute request's message id. */
  id: string;
  state: 'busy' | 'idle';
}

/** `message` as an execute request going busy or idle (from any client), else null. */
export function executionState(
  message: KernelMessage.IIOPubMessage
): IExecutionState | null {
  const parent = message.parent_header as Partial<KernelMessage.IHeader>;
  if (
    !KernelMessage.isStatusMsg(message) ||
    parent.msg_type !== 'execute_request' ||
    !parent.msg_id
  ) {
    return null;
  }
  const state = message.content.execution_state;
  return state === 'busy' || state === 'idle'
    ? { id: parent.msg_id, state }
    : null;
}
