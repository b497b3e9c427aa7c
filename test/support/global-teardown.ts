export default async function globalTeardown(): Promise<void> {
  await globalThis.__PARLEY_DEV_SERVER__?.stop();
}
