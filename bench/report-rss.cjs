// Preloaded into a measured node process: records its peak RSS (KB) when it exits.
const { writeFileSync } = require('node:fs')
process.on('exit', () => {
  const file = process.env.NHI_BENCH_RSS_FILE
  if (file) writeFileSync(file, String(process.resourceUsage().maxRSS))
})
