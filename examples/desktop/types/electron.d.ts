// The few Electron APIs src/main.ts uses, declared here because Electron is not
// installed in this repository. Signatures are Electron's own (a subset), so
// main.ts compiles unchanged against the real `electron` package in the app,
// where this file is not copied.
declare module 'electron' {
  interface ElectronEvent {
    preventDefault(): void
  }

  export interface WebContents {
    send(channel: string, ...args: unknown[]): void
    isDestroyed(): boolean
  }

  export interface IpcMainInvokeEvent {
    sender: WebContents
  }

  export class BrowserWindow {
    constructor(options?: { width?: number; height?: number; webPreferences?: { preload?: string; contextIsolation?: boolean } })
    static getAllWindows(): BrowserWindow[]
    readonly webContents: WebContents
    loadFile(filePath: string): Promise<void>
  }

  export const app: {
    whenReady(): Promise<void>
    getPath(name: 'userData'): string
    getAppPath(): string
    on(event: 'will-quit', listener: (event: ElectronEvent) => void): void
    on(event: 'window-all-closed', listener: () => void): void
    quit(): void
    exit(exitCode?: number): void
  }

  export const ipcMain: {
    handle(channel: string, listener: (event: IpcMainInvokeEvent, ...args: any[]) => unknown): void
    removeHandler(channel: string): void
  }
}
