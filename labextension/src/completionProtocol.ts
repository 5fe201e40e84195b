/**
 * The "llmux-complete" comm protocol, as llmux_jupyter/frontends/completion_comm.py speaks it.
 */

/** The comm target the kernel registers at `%load_ext llmux_jupyter`. */
export const COMPLETION_TARGET = 'llmux-complete';

/** Ask for the completion at the cursor; a newer request cancels the running one. */
export interface ICompleteRequest {
  op: 'complete';
  id: number;
  /** The cell's text before and after the cursor. */
  before: string;
  after: string;
  /** The sources of the code cells above, oldest first. */
  context: string[];
  max_tokens: number;
}

export interface ICancelRequest {
  op: 'cancel';
  id: number;
}

/** The kernel's completion model (null: completion is off). */
export interface IStatusMessage {
  type: 'status';
  model: string | null;
}

/** More ghost text for request `id`. */
export interface IDeltaMessage {
  type: 'delta';
  id: number;
  text: string;
}

/** Why a request ended. */
export type EndReason =
  'stop' | 'end' | 'max_tokens' | 'cancelled' | 'busy' | 'off' | 'error';

/** Request `id` is over: `text` is all it made. */
export interface IEndMessage {
  type: 'end';
  id: number;
  reason: EndReason;
  text: string;
  error?: string;
}

export type CompletionMessage = IStatusMessage | IDeltaMessage | IEndMessage;
