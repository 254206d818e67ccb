// Example Electron main process: one FileLockManager and one RolesRepository
// for all windows of this instance (other instances are other processes: the
// OS lock orders them). Renderers reach the roles over IPC (electron/rolesIpc.ts)
// and receive notices on 'roles:notice'. On quit: save, then release everything.
// Load the package in the main process only; when packaging with asar, unpack
// the addon (`asarUnpack: ['**/*.node']`).
import { app, BrowserWindow, ipcMain } from 'electron'
import path from 'node:path'
import { RolesRepository } from './data/RolesRepository.js'
import { FileLockManager } from './data/locking/FileLockManager.js'
import { registerRolesIpc } from './electron/rolesIpc.js'

// Strategy: selectStrategy(process.platform). For a data folder shared by several
// machines: new FileLockManager({ strategy: selectStrategy(process.platform, { sharedAcrossMachines: true }) }).
const manager = new FileLockManager({ auditLog: path.join(app.getPath('userData'), 'locks.audit.jsonl') })
manager.onWaiting((e) => console.info(e.message)) // "waiting for another process on this machine since …"

let repo: RolesRepository | null = null
let unregister = (): void => {}

function createWindow(): void {
  const win = new BrowserWindow({ width: 1000, height: 700, webPreferences: { preload: path.join(app.getAppPath(), 'preload.js'), contextIsolation: true } })
  void win.loadFile('index.html')
}

app.whenReady().then(async () => {
  repo = await RolesRepository.open(manager, path.join(app.getPath('userData'), 'roles.json'))
  unregister = registerRolesIpc(ipcMain, repo, () => BrowserWindow.getAllWindows().map((w) => w.webContents))
  createWindow()
})

let quitting = false
app.on('will-quit', (event) => {
  if (quitting) return
  quitting = true
  event.preventDefault() // finish saving first
  unregister()
  const closing = repo?.close() ?? Promise.resolve()
  closing
    .catch((error: unknown) => console.error('roles not saved at quit', error)) // EUNSAVED lists them
    .finally(() => manager.close().finally(() => app.exit(0)))
})
