/**
 * Preloaded into a gateway a bench starts (`node --expose-gc --import
 * <this file> dist/src/main.js`, with an IPC channel): answers `'memory'` on
 * the channel with the process's memory after a full collection, so a bench
 * can read the heap, not only the RSS /proc shows. Nothing else: the gateway
 * runs as it would.
 */
process.on('message', (message: unknown) => {
  if (message !== 'memory') return;
  (globalThis as { gc?: () => void }).gc?.();
  process.send?.({ ...process.memoryUsage(), gc: typeof globalThis.gc === 'function' });
});
// The channel must not keep a gateway alive that was told to stop.
process.channel?.unref();
