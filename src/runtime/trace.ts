// TSRUN_TRACE=1 prints how long each phase took (ms since the process started): measure, don't guess.
const on = !!process.env.TSRUN_TRACE;
export function trace(label: string): void {
  if (on) process.stderr.write(`[trace ${performance.now().toFixed(1)} ms] ${label}\n`);
}
