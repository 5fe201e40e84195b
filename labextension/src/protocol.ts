/**
 * The "llmux" comm protocol, as llmux_jupyter/frontends/sidebar.py speaks it.
 */

/** The comm target the kernel registers at `%load_ext llmux_jupyter`; the front end opens
 * every comm to it, the kernel never opens one. */
export const TARGET = 'llmux';

/** One catalog model; the state fields are set when it is loaded (times in Unix seconds). */
export interface IModelStatus {
  name: string;
  backend: string;
  task: string;
  source: string;
  loaded: boolean;
  is_default: boolean;
  device: string | null;
  state: string | null;
  estimate: number | null;
  measured: number | null;
  pinned: boolean;
  keep_alive: number | null;
  expires_at: number | null;
  loaded_at: number | null;
  last_used: number | null;
}

/** One device's memory: what our models hold, what other kernels' models hold (from the
 * host memory ledger), the budget that covers both, the device's size (bytes). */
export interface IDeviceUse {
  device: string;
  used: number;
  others: number;
  budget: number;
  total: number;
}

/** A model another kernel on this machine holds: bytes on its device. */
export interface IHeldModel {
  name: string;
  device: string;
  held: number;
}

/** Another kernel that holds models; `notebook` is its notebook's path when known. */
export interface IKernelModels {
  pid: number;
  notebook: string | null;
  models: IHeldModel[];
}

export interface ISnapshot {
  time: number;
  models: IModelStatus[];
  devices: IDeviceUse[];
  elsewhere: IKernelModels[];
  defaults: { [task: string]: string };
}

/** The answer being generated now. */
export interface IGeneration {
  model: string;
  tokens: number;
  tokens_per_second: number | null;
}

export interface ISnapshotMessage {
  type: 'snapshot';
  snapshot: ISnapshot;
  generation: IGeneration | null;
}

export interface IReplyMessage {
  type: 'reply';
  id: number | null;
  op: string | null;
  ok: boolean;
  error?: string;
}

/** A message from the kernel on the comm. */
export type LLMuxMessage = ISnapshotMessage | IReplyMessage;

/** What the frontend may ask; the kernel rejects anything else. */
export type Request =
  | { op: 'refresh' }
  | { op: 'unload' | 'pin' | 'unpin'; model: string }
  | { op: 'keep_alive'; model: string; duration: string };
