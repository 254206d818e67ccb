'use strict'
// The package's entry: the public API, as index.d.ts declares it. The code is
// in lib/ (manager.js, the JS edge over the native core native.js, is where to
// start); only this file and package.json are reachable from outside
// (package.json `exports`).

const { FileLockManager } = require('./lib/manager.js')
const { Lock } = require('./lib/lock.js')
const { FileLockError } = require('./lib/errors.js')
const { JsonDocument } = require('./lib/document/document.js')
const { Watcher } = require('./lib/watcher.js')
const { DEFAULTS } = require('./lib/options.js')
const { mergeJson, diffJson, MAX_JSON_DEPTH } = require('./lib/merge.js')

module.exports = { FileLockManager, Lock, FileLockError, JsonDocument, Watcher, DEFAULTS, mergeJson, diffJson, MAX_JSON_DEPTH }
