'use strict'
// Stand-ins for a newer server, which does not exist yet: an HTTP server
// that answers with given JSON, and a WebSocket endpoint that speaks the
// worker protocol frame by frame as the test says (RFC 6455, text frames
// only: all the worker protocol uses). The SDK under test is real.

const crypto = require('node:crypto')
const http = require('node:http')

/** Listens on a free port; resolves `{ url, close }`. */
function listen(server) {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) })
    })
  })
}

/** An HTTP server answering `route(method, path)`'s `[status, json]`. */
async function httpStandIn(route) {
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      const [status, body] = route(req.method, req.url)
      res.writeHead(status, { 'content-type': 'application/json', connection: 'close' })
      res.end(JSON.stringify(body))
    })
  })
  return listen(server)
}

/** Encodes a server frame: text (opcode 1) or close (8), unmasked. */
function frame(opcode, payload) {
  const length = payload.length
  const head = length < 126 ? Buffer.from([0x80 | opcode, length])
    : length < 65536 ? Buffer.from([0x80 | opcode, 126, length >> 8, length & 0xff])
      : Buffer.concat([Buffer.from([0x80 | opcode, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(length)); return b })()])
  return Buffer.concat([head, payload])
}

/**
 * A WebSocket endpoint at `/v1/workers/connect`. Resolves `{ url, next,
 * send, close }`: `next()` resolves the worker's next text frame as JSON
 * (once one connected), `send(json)` sends one.
 */
async function wsStandIn() {
  const server = http.createServer((req, res) => { res.writeHead(404); res.end() })
  const frames = []
  const waiting = []
  let socket
  let connected
  const ready = new Promise((r) => { connected = r })
  const deliver = (value) => (waiting.length ? waiting.shift()(value) : frames.push(value))
  server.on('upgrade', (req, sock) => {
    const accept = crypto.createHash('sha1')
      .update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
    sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
    socket = sock
    connected()
    let buffer = Buffer.alloc(0)
    sock.on('data', (data) => {
      buffer = Buffer.concat([buffer, data])
      for (;;) {
        if (buffer.length < 2) return
        const opcode = buffer[0] & 0x0f
        let length = buffer[1] & 0x7f
        let offset = 2
        if (length === 126) { if (buffer.length < 4) return; length = buffer.readUInt16BE(2); offset = 4 }
        else if (length === 127) { if (buffer.length < 10) return; length = Number(buffer.readBigUInt64BE(2)); offset = 10 }
        // Client frames are masked.
        if (buffer.length < offset + 4 + length) return
        const mask = buffer.subarray(offset, offset + 4)
        const payload = Buffer.from(buffer.subarray(offset + 4, offset + 4 + length))
        for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4]
        buffer = buffer.subarray(offset + 4 + length)
        if (opcode === 1) deliver(JSON.parse(payload.toString('utf8')))
        else if (opcode === 8) { sock.end(frame(8, payload)) }
        else if (opcode === 9) sock.write(frame(10, payload))
      }
    })
    sock.on('error', () => {})
  })
  const { url, close } = await listen(server)
  return {
    url,
    /** The worker's next text frame, as JSON. */
    async next() {
      await ready
      return frames.length ? frames.shift() : new Promise((r) => waiting.push(r))
    },
    send(json) { socket.write(frame(1, Buffer.from(JSON.stringify(json)))) },
    async close() { socket?.destroy(); await close() },
  }
}

module.exports = { httpStandIn, wsStandIn }
