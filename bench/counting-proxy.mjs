// A loopback HTTP proxy that counts the calls passing through it, by method and path (digit
// runs replaced by N). Runs as its own process, so a synchronous spawn in the bench cannot
// starve it. Usage: node bench/counting-proxy.mjs UPSTREAM_URL; prints its address on the
// first line, and the counts as JSON when its stdin closes.
import http from 'node:http'

const upstream = new URL(process.argv[2])
const counts = {}
const server = http.createServer((req, res) => {
  const key = `${req.method} ${req.url.replace(/\d+/g, 'N')}`
  counts[key] = (counts[key] ?? 0) + 1
  const up = http.request(
    { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
    (r) => {
      res.writeHead(r.statusCode, r.headers)
      r.pipe(res)
    },
  )
  up.on('error', () => res.destroy())
  req.pipe(up)
})
server.listen(0, '127.0.0.1', () => console.log(`http://127.0.0.1:${server.address().port}`))
process.stdin.resume()
process.stdin.on('end', () => {
  // Exit only once the line is written: process.exit would cut a piped stdout short.
  process.stdout.write(`${JSON.stringify(counts)}\n`, () => process.exit(0))
})
