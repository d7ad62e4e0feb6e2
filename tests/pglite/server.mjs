// PGlite (PostgreSQL 17 in WASM) with TimescaleDB, served over the PostgreSQL wire protocol on
// 127.0.0.1. PGlite is one backend: clients take turns (one connection at a time, the others
// wait in order). When a client leaves, its prepared statements and temporary tables go, as
// when a real session ends; settings (search_path, TimeZone) stay for the next client.
// No COPY, no background workers. Prints one JSON line {"port": N} on stdout once it accepts
// connections; stops on SIGTERM, SIGINT or when stdin closes (its test process went away).
import { createServer } from 'node:net'
import { PGlite } from '@electric-sql/pglite'
import { timescaledb } from '@electric-sql/pglite/timescaledb'
import { PGLiteSocketHandler } from '@electric-sql/pglite-socket'

const db = await PGlite.create({ extensions: { timescaledb } })
await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')

const waiting = []
let busy = false

async function serveNext () {
  if (busy) return
  const socket = waiting.shift()
  if (socket === undefined) return
  if (socket.destroyed) return serveNext()
  busy = true
  const handler = new PGLiteSocketHandler({ db, closeOnDetach: true })
  let ended = false
  const end = async () => {
    if (ended) return
    ended = true
    await db.exec('DEALLOCATE ALL; DISCARD TEMP').catch(() => {})
    busy = false
    serveNext()
  }
  handler.addEventListener('close', end)
  handler.addEventListener('error', end)
  try {
    await handler.attach(socket)
  } catch {
    socket.destroy()
    await end()
  }
}

const server = createServer((socket) => {
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
