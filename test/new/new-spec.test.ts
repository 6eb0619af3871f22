import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createNewSpec, type NewSpecOptions } from '../../src/new/new-spec.js'
import type { Answers } from '../../src/new/fields.js'
import { tempRepo, type TempRepo } from '../helpers/temp-repo.js'
import { PROJECT_ROOT } from '../helpers/cli.js'

const NOW = new Date('2026-03-04T05:06:07.890Z')
const BASE: Answers = {
  identity: 'svc-key',
  type: 'api-key',
  owner: 'team-a',
  risk: 'low',
  provider: 'local',
  mechanism: 'local',
  path: 'svc/key',
  action: 'rotate',
  reason: 'Rotate after the incident.',
  ticket: 'INC-1',
}

const repos: TempRepo[] = []
afterEach(() => {
  for (const r of repos.splice(0)) r.cleanup()
})

function options(answers: Answers): NewSpecOptions {
  const repo = tempRepo()
  repos.push(repo)
  return { cwd: repo.root, answers, now: NOW, packageRoot: PROJECT_ROOT, gitIdentity: () => ({}) }
}

describe('the new-spec service', () => {
  it('treats an empty --expires-in as absent: the default 7d applies', async () => {
    const opts = options({ ...BASE, requester: 'alice', requesterKind: 'human', expiresIn: '  ' })
    const result = await createNewSpec(opts)
    expect(result.expires).toBe('2026-03-11T05:06:07Z')
  })

  it('files a requester listed under agents as an agent without asking', async () => {
    // The example config lists nhi-recover-agent under agents
    const opts = options({ ...BASE, requester: 'nhi-recover-agent' })
    const result = await createNewSpec(opts)
    const text = readFileSync(join(opts.cwd, result.file), 'utf8')
    expect(text).toContain('requester:\n  name: nhi-recover-agent\n  kind: agent\n')
  })

  it('does not take a git user.name that is not a safe principal', async () => {
    const opts = { ...options({ ...BASE }), gitIdentity: () => ({ name: 'Alice Example' }) }
    await expect(createNewSpec(opts)).rejects.toMatchObject({
      code: 'MISSING_FLAGS',
      message: 'Missing required flag(s): --requester, --requester-kind.',
    })
  })

  it('writes created with whole seconds, as validate expects', async () => {
    const opts = options({ ...BASE, requester: 'alice', requesterKind: 'human' })
    const result = await createNewSpec(opts)
    expect(readFileSync(join(opts.cwd, result.file), 'utf8')).toContain('created: 2026-03-04T05:06:07Z\n')
  })
})
