// PGlite (PostgreSQL 17 in WASM) with TimescaleDB, served over the PostgreSQL wire protocol on
// 127.0.0.1. PGlite is one backend: clients take turns (one connection at a time, the others
// wait in order). When a client leaves, its prepared statements and temporary tables go, as
// when a real session ends; settings (search_path, TimeZone) stay for the next client.
// No background workers. Prints one JSON line {"port": N} on stdout once it accepts
// connections; stops on SIGTERM, SIGINT or when stdin closes (its test process went away).
import { createServer } from 'node:net'
import { PGlite } from '@electric-sql/pglite'
import { timescaledb } from '@electric-sql/pglite/timescaledb'

const db = await PGlite.create({ extensions: { timescaledb } })
await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')

const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const waiting = []
let busy = false

// Whole protocol messages only: PGlite's raw protocol entry point aborts the WASM instance
// when a message arrives split over several TCP reads (a large INSERT, COPY data).
function takeMessages (state) {
  const messages = []
  for (;;) {
    const typed = state.started ? 1 : 0
    if (state.buffer.length < typed + 4) break
    const length = typed + state.buffer.readInt32BE(typed)
    if (state.buffer.length < length) break
    messages.push(state.buffer.subarray(0, length))
    state.buffer = state.buffer.subarray(length)
    if (!state.started) {
      const code = messages.at(-1).readInt32BE(4)
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        messages.pop()
        state.refuse += 1
      } else {
        state.started = true
      }
    }
  }
  return messages
}

function serveNext () {
  if (busy) return
  const socket = waiting.shift()
  if (socket === undefined) return
  if (socket.destroyed) return serveNext()
  busy = true
  const state = { started: false, buffer: Buffer.alloc(0), refuse: 0 }
  let queue = Promise.resolve()
  let ended = false
  const end = () => {
    if (ended) return
    ended = true
    queue = queue.then(() => db.exec('DEALLOCATE ALL; DISCARD TEMP')).catch(() => {})
      .then(() => { busy = false; serveNext() })
  }
  socket.on('close', end)
  socket.on('data', (chunk) => {
    state.buffer = Buffer.concat([state.buffer, chunk])
    const messages = takeMessages(state)
    for (; state.refuse > 0; state.refuse -= 1) socket.write('N')
    if (messages.length === 0) return
    queue = queue.then(async () => {
      const reply = await db.execProtocolRaw(new Uint8Array(Buffer.concat(messages)))
      if (reply.length > 0 && !socket.destroyed) socket.write(Buffer.from(reply))
    }).catch(() => socket.destroy())
  })
  socket.resume()
}

const server = createServer({ pauseOnConnect: true }, (socket) => {
  socket.on('error', () => {})
  waiting.push(socket)
  serveNext()
})
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n')
})

let stopping = false
async function stop () {
  if (stopping) return
  stopping = true
  for (const socket of waiting) socket.destroy()
  server.close()
  await db.close().catch(() => {})
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.stdin.on('end', stop)
process.stdin.resume()
