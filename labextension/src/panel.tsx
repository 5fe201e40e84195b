import { LabIcon, VDomRenderer } from '@jupyterlab/ui-components';
import * as React from 'react';

import {
  formatBytes,
  formatCountdown,
  formatDuration,
  formatGiB
} from './format';
import { LLMuxModel } from './model';
import {
  IDeviceUse,
  IGeneration,
  IKernelModels,
  IModelStatus
} from './protocol';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M7 7h10v10H7z" fill-opacity="0.35"/>
    <path d="M6 5h12a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1zm1 2v10h10V7z"/>
    <path d="M9 1h2v3H9zm4 0h2v3h-2zM9 20h2v3H9zm4 0h2v3h-2zM1 9h3v2H1zm0 4h3v2H1zm19-4h3v2h-3zm0 4h3v2h-3z"/>
  </g>
</svg>`;

export const llmuxIcon = new LabIcon({ name: 'llmux:chip', svgstr: ICON_SVG });

const DURATIONS = ['30s', '5m', '30m', '1h', '0', '-1'];

/**
 * The left side panel: loaded models, memory per device, the running generation.
 */
export class LLMuxPanel extends VDomRenderer<LLMuxModel> {
  constructor(model: LLMuxModel) {
    super(model);
    this.id = 'llmux-sidebar';
    this.addClass('jp-llmux-panel');
    this.title.icon = llmuxIcon;
    // The tab's tooltip in JupyterLab; Notebook 7's View → Left Sidebar entry "Show LLMux".
    this.title.caption = 'LLMux';
  }

  protected render(): React.ReactElement {
    return <PanelView model={this.model} />;
  }
}

/**
 * The status-bar item: "LLMux: N models · X GiB"; a click opens the panel.
 */
export class LLMuxStatus extends VDomRenderer<LLMuxModel> {
  constructor(model: LLMuxModel, open: () => void) {
    super(model);
    this._open = open;
    this.addClass('jp-llmux-status');
    this.node.title = 'Open the LLMux panel';
  }

  protected render(): React.ReactElement {
    const count = this.model.loadedModels.length;
    return (
      <span className="jp-llmux-status-text" onClick={this._open}>
        LLMux: {count} model{count === 1 ? '' : 's'} ·{' '}
        {formatGiB(this.model.memoryHeld)}
      </span>
    );
  }

  private _open: () => void;
}

function PanelView({ model }: { model: LLMuxModel }): React.ReactElement {
  return (
    <div className="jp-llmux-body">
      <header className="jp-llmux-header">
        <h2 className="jp-llmux-title">LLMux</h2>
        <span
          className="jp-llmux-notebook"
          title="The notebook whose kernel this shows"
        >
          {model.notebookName}
        </span>
        <button
          className="jp-llmux-button jp-llmux-refresh"
          title="Ask the kernel again"
          onClick={() =>
            model.state === 'ready'
              ? void model.perform({ op: 'refresh' })
              : model.reconnect()
          }
          disabled={
            model.state === 'no-kernel' || model.state === 'no-notebook'
          }
        >
          Refresh
        </button>
      </header>
      {model.error && (
        <div className="jp-llmux-error" role="alert">
          <span>{model.error}</span>
          <button
            className="jp-llmux-button"
            onClick={() => model.dismissError()}
            title="Dismiss"
          >
            ×
          </button>
        </div>
      )}
      <Content model={model} />
    </div>
  );
}

function Content({ model }: { model: LLMuxModel }): React.ReactElement {
  switch (model.state) {
    case 'no-notebook':
      return <Note>Open a notebook to see the models in its kernel.</Note>;
    case 'no-kernel':
      return <Note>This notebook has no running kernel.</Note>;
    case 'connecting':
      return <Note>Connecting to the kernel…</Note>;
    case 'restarting':
      return <Note>The kernel is restarting…</Note>;
    case 'not-loaded':
      return (
        <div className="jp-llmux-note jp-llmux-not-loaded">
          <p>Extension not loaded in this kernel — run</p>
          <code>%load_ext llmux_jupyter</code>
        </div>
      );
    case 'ready':
      return <Ready model={model} />;
  }
}

function Note({ children }: { children: React.ReactNode }): React.ReactElement {
  return <p className="jp-llmux-note">{children}</p>;
}

function Ready({ model }: { model: LLMuxModel }): React.ReactElement {
  const models = model.loadedModels;
  return (
    <>
      {model.generation && <Running generation={model.generation} />}
      <section className="jp-llmux-section">
        <h3>Memory</h3>
        {model.snapshot?.devices.map(use => (
          <DeviceBar key={use.device} use={use} />
        ))}
        <OtherKernels kernels={model.snapshot?.elsewhere ?? []} />
      </section>
      <section className="jp-llmux-section">
        <h3>Loaded models ({models.length})</h3>
        {models.length === 0 && (
          <Note>
            No model loaded. A <code>%%llm</code> cell or{' '}
            <code>%llm load NAME</code> loads one.
          </Note>
        )}
        {models.map(status => (
          <ModelCard key={status.name} model={model} status={status} />
        ))}
        <datalist id="jp-llmux-durations">
          {DURATIONS.map(value => (
            <option key={value} value={value} />
          ))}
        </datalist>
      </section>
    </>
  );
}

function Running({
  generation
}: {
  generation: IGeneration;
}): React.ReactElement {
  const speed = generation.tokens_per_second;
  return (
    <section className="jp-llmux-section jp-llmux-running">
      <h3>Generating</h3>
      <div className="jp-llmux-running-line">
        <span className="jp-llmux-pulse" />
        <strong>{generation.model}</strong>
        <span className="jp-llmux-tokens">
          {generation.tokens} token{generation.tokens === 1 ? '' : 's'}
        </span>
        <span className="jp-llmux-speed">
          {speed === null ? '' : `${speed.toFixed(1)} tok/s`}
        </span>
      </div>
    </section>
  );
}

function DeviceBar({ use }: { use: IDeviceUse }): React.ReactElement {
  const held = use.used + use.others;
  const total = Math.max(use.total, use.budget, held, 1);
  const percent = (value: number) => `${(100 * value) / total}%`;
  const width = (value: number) =>
    value > 0 ? `max(2px, ${percent(value)})` : '0';
  const over = held > use.budget;
  return (
    <div className="jp-llmux-device" data-device={use.device}>
      <div className="jp-llmux-device-label">
        <strong>{use.device}</strong>
        <span>{formatBytes(use.used)} used by models</span>
      </div>
      <div
        className="jp-llmux-bar"
        role="meter"
        aria-valuemin={0}
        aria-valuemax={use.total}
        aria-valuenow={use.used}
        aria-label={`${use.device} memory used by models`}
      >
        <div
          className="jp-llmux-bar-budget"
          style={{ width: percent(use.budget) }}
        />
        <div
          className={`jp-llmux-bar-used${over ? ' jp-mod-over' : ''}`}
          style={{ width: width(use.used) }}
        />
        <div
          className="jp-llmux-bar-others"
          title="Other kernels' models (their share of the budget)"
          style={{ left: percent(use.used), width: width(use.others) }}
        />
      </div>
      <div className="jp-llmux-device-legend">
        {use.others > 0 && (
          <span className="jp-llmux-others">
            other kernels {formatBytes(use.others)} ·{' '}
          </span>
        )}
        budget {formatBytes(use.budget)} · total {formatBytes(use.total)}
      </div>
    </div>
  );
}

/** The other kernels on this machine that hold models (from the host memory ledger). */
function OtherKernels({
  kernels
}: {
  kernels: IKernelModels[];
}): React.ReactElement | null {
  if (kernels.length === 0) {
    return null;
  }
  return (
    <div className="jp-llmux-elsewhere">
      <h4>Other kernels</h4>
      {kernels.map(kernel => (
        <div
          key={kernel.pid}
          className="jp-llmux-kernel"
          data-pid={kernel.pid}
          title={`pid ${kernel.pid}: %llm unload NAME in that notebook frees its memory`}
        >
          <span className="jp-llmux-kernel-notebook">
            {kernel.notebook ?? `pid ${kernel.pid}`}
          </span>
          <span className="jp-llmux-kernel-models">
            {kernel.models
              .map(
                held =>
                  `${held.name} ${formatBytes(held.held)} (${held.device})`
              )
              .join(', ')}
          </span>
        </div>
      ))}
    </div>
  );
}

function ModelCard({
  model,
  status
}: {
  model: LLMuxModel;
  status: IModelStatus;
}): React.ReactElement {
  const [duration, setDuration] = React.useState('');
  const name = status.name;
  const pending = model.isPending(name);
  const busy = status.state === 'busy';
  const setKeepAlive = () => {
    if (duration.trim()) {
      void model.perform({ op: 'keep_alive', model: name, duration });
      setDuration('');
    }
  };
  return (
    <div className="jp-llmux-model" data-model={name}>
      <div className="jp-llmux-model-head">
        <strong className="jp-llmux-model-name">{name}</strong>
        <span className={`jp-llmux-badge jp-llmux-state-${status.state}`}>
          {status.state}
        </span>
        {status.pinned && (
          <span className="jp-llmux-badge jp-llmux-pinned">pinned</span>
        )}
        {status.is_default && (
          <span
            className="jp-llmux-badge"
            title={`the default ${status.task} model`}
          >
            default
          </span>
        )}
      </div>
      <div className="jp-llmux-model-meta">
        {status.backend} · {status.task} · {status.device}
      </div>
      <div className="jp-llmux-model-memory">
        <span className="jp-llmux-measured">
          {formatBytes(status.measured)} measured
        </span>
        <span className="jp-llmux-estimate">
          {formatBytes(status.estimate)} estimated
        </span>
      </div>
      <div className="jp-llmux-model-keepalive">
        <KeepAlive model={model} status={status} />
      </div>
      <div className="jp-llmux-actions">
        <button
          className="jp-llmux-button jp-llmux-unload"
          disabled={pending || busy}
          title={
            busy ? 'Busy generating' : `Unload ${name} and free its memory`
          }
          onClick={() => void model.perform({ op: 'unload', model: name })}
        >
          Unload
        </button>
        <button
          className="jp-llmux-button jp-llmux-pin"
          disabled={pending}
          title={
            status.pinned
              ? 'Let eviction and keep-alive unload it again'
              : 'Never evict it, ignore keep-alive'
          }
          onClick={() =>
            void model.perform({
              op: status.pinned ? 'unpin' : 'pin',
              model: name
            })
          }
        >
          {status.pinned ? 'Unpin' : 'Pin'}
        </button>
        <input
          className="jp-llmux-duration"
          list="jp-llmux-durations"
          placeholder="keep-alive, e.g. 10m"
          aria-label={`New keep-alive for ${name}`}
          value={duration}
          disabled={pending}
          onChange={event => setDuration(event.target.value)}
          onKeyDown={event => {
            if (event.key === 'Enter') {
              setKeepAlive();
            }
          }}
        />
        <button
          className="jp-llmux-button jp-llmux-set-keepalive"
          disabled={pending || !duration.trim()}
          onClick={setKeepAlive}
          title="Set the keep-alive (0: unload after use, -1: never)"
        >
          Set
        </button>
      </div>
    </div>
  );
}

function KeepAlive({
  model,
  status
}: {
  model: LLMuxModel;
  status: IModelStatus;
}): React.ReactElement {
  const [, tick] = React.useState(0);
  const expires = status.expires_at;
  React.useEffect(() => {
    if (expires === null) {
      return;
    }
    const timer = window.setInterval(() => tick(n => n + 1), 1000);
    return () => window.clearInterval(timer);
  }, [expires]);
  const setting = `keep-alive ${formatDuration(status.keep_alive)}`;
  if (status.pinned) {
    return <span>{setting} · pinned: stays loaded</span>;
  }
  if (expires === null) {
    return (
      <span>
        {setting}
        {status.keep_alive === null ? ' · stays until unloaded' : ' · in use'}
      </span>
    );
  }
  return (
    <span>
      {setting} · unloads in{' '}
      <span className="jp-llmux-countdown">
        {formatCountdown(expires - model.kernelNow())}
      </span>
    </span>
  );
}
