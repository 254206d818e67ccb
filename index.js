'use strict'
// The package's entry: the public API, as index.d.ts declares it. The code is
// in lib/ (manager.js is the JS edge over the native core, native.js); only
// this file and package.json are reachable from outside (package.json `exports`).

module.exports = require('./lib/manager.js')
