/**
 * signals.ts — how the master reacts to signals, as master(8) does:
 * SIGHUP re-reads the configuration (reload), SIGTERM and SIGINT stop the mail
 * system gracefully. A second SIGTERM/SIGINT during a graceful stop asks for an
 * immediate stop.
 *
 * Contract: handlers run one at a time, in arrival order (a reload never runs
 * concurrently with another reload or with the stop); reloads still waiting
 * when a stop arrives are dropped, one that is running finishes first. `install()` returns the function that removes
 * the handlers again. The signal source is injectable for tests.
 *
 * Not here: what reload and stop do (main.ts).
 */

export type StopSignal = 'SIGTERM' | 'SIGINT';

export interface SignalHandlers {
  reload(): Promise<void>;
  stop(signal: StopSignal): Promise<void>;
  /** A second stop signal while stopping. */
  forceStop?(signal: StopSignal): void;
}

/** The part of `process` this module needs. */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: () => void): unknown;
  off(event: NodeJS.Signals, listener: () => void): unknown;
}

/** Install the handlers; returns an uninstall function. */
export function installSignals(handlers: SignalHandlers, source: SignalSource = process): () => void {
  let chain: Promise<void> = Promise.resolve();
  let stopping = false;
  const enqueue = (task: () => Promise<void>): void => {
    chain = chain.then(task).catch(() => undefined);
  };
  const onHup = (): void => {
    if (!stopping) enqueue(() => (stopping ? Promise.resolve() : handlers.reload()));
  };
  const onStop = (signal: StopSignal) => (): void => {
    if (stopping) {
      handlers.forceStop?.(signal);
      return;
    }
    stopping = true;
    enqueue(() => handlers.stop(signal));
  };
  const onTerm = onStop('SIGTERM');
  const onInt = onStop('SIGINT');
  source.on('SIGHUP', onHup);
  source.on('SIGTERM', onTerm);
  source.on('SIGINT', onInt);
  return () => {
    source.off('SIGHUP', onHup);
    source.off('SIGTERM', onTerm);
    source.off('SIGINT', onInt);
  };
}

/** The number master(8) logs: `terminating on signal 15`. */
export function signalNumber(signal: StopSignal): number {
  return signal === 'SIGTERM' ? 15 : 2;
}
