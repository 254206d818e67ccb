// A live process that does nothing (and uses no lock): its pid is written into
// planted lock records, as a holder that is alive.
process.on('disconnect', () => process.exit(0))
setInterval(() => {}, 1 << 30)
process.send({ type: 'ready', pid: process.pid })
