/**
 * Every file that `nhi-recover init` writes, in one place. The workflows call commands that
 * later issues add or change (plan, approvals check, execute), so they are edited here only.
 */

export interface TemplateOptions {
  /** The CLI version the workflows pin, e.g. "0.1.0". */
  version: string
  /** CODEOWNERS owner of the recovery specs and config, e.g. "@acme/security". */
  securityTeam: string
}

/** GitHub team slug of an owner such as "@acme/security" ("security"); a user owner maps to "security". */
export function teamSlug(owner: string): string {
  const slash = owner.indexOf('/')
  return slash === -1 ? 'security' : owner.slice(slash + 1)
}

/** nhi-recover.yaml with commented defaults. It must validate as it is (a test checks). */
export function repoConfigTemplate(opts: TemplateOptions): string {
  const team = teamSlug(opts.securityTeam)
  return `# yaml-language-server: $schema=recovery-specs/schema/repo-config.v1.json
# nhi-recover.yaml: providers, approval backends and policy of this recovery repo.
# A pull request that changes this file needs the highest tier, and the policy in force is
# always the one on the base branch, so a PR cannot lower its own bar.
apiVersion: nhi-recover/v1
kind: RepoConfig

# Where credentials live. A spec's target.provider names one of these.
providers:
  # A versioned store on disk, encrypted at rest (AES-256-GCM). The key is 32 bytes, base64,
  # from the env var below or from a key file with mode 0600 (keyFile: PATH).
  local:
    kind: local
    store: .nhi-recover/local-store
    keyEnv: NHI_RECOVER_LOCAL_KEY
  # OpenBao or HashiCorp Vault. In GitHub Actions, jwt auth uses the workflow's OIDC token.
  # bao:
  #   kind: vault
  #   address: https://bao.example.internal:8200
  #   auth:
  #     method: jwt
  #     role: nhi-recover-ci
  # AWS uses the default credential chain (in GitHub Actions: an OIDC role).
  # aws-sm:
  #   kind: aws-secrets-manager
  #   region: eu-west-1
  # aws-iam:
  #   kind: aws-iam
  #   region: eu-west-1

# Where approvals come from. A tier below says which of these it requires.
approvals:
  # Pull request reviews. For GitHub Enterprise add baseUrl: https://HOST/api/v3
  github:
    tokenEnv: GITHUB_TOKEN
  # SSH-signed approvals (nhi-recover approve), verified offline against this file as it
  # is on the base branch.
  ssh:
    allowedSigners: .nhi-recover/allowed_signers

# The spec's identity.risk picks the tier; escalation rules can raise it, never lower it.
# Teams are GitHub team slugs of the repository owner.
policy:
  tiers:
    low:
      approvals: 1
      teams: [{ team: ${team}, min: 1 }]
      maxAge: 7d
    medium:
      approvals: 2
      teams: [{ team: ${team}, min: 1 }]
      maxAge: 3d
    high:
      approvals: 2
      teams: [{ team: ${team}, min: 2 }]
      backends: [github, ssh]
      signed: true
      maxAge: 24h
    critical:
      approvals: 3
      teams: [{ team: ${team}, min: 2 }]
      backends: [github, ssh]
      signed: true
      maxAge: 12h
  escalation:
    - when: { identityType: iam-user }
      minTier: high
      reason: IAM users can reach the whole account
    - when: { requesterKind: agent }
      minTier: medium
      reason: requests filed by automation need a second person

# Logins of bots and agents. They never count as approvers.
agents: []

# The signed, hash-chained ledger of every execution.
audit:
  path: audit
  # signer:
  #   kind: ssh
  #   keyEnv: NHI_RECOVER_AUDIT_KEY
  #   principal: nhi-recover-executor

limits:
  maxSpecBytes: 262144
  # Longest span from a request's created to its expires.
  maxRequestLifetime: 30d
  maxDepth: 32
  maxAliases: 50
`
}

const CHECKOUT = 'actions/checkout@v4'
const SETUP_NODE = 'actions/setup-node@v4'

/** Steps every job starts with: the full history (approvals compare spec blobs across commits) and Node. */
function setupSteps(persistCredentials: boolean): string {
  return `      - uses: ${CHECKOUT}
        with:
          fetch-depth: 0
          persist-credentials: ${persistCredentials}
      - uses: ${SETUP_NODE}
        with:
          node-version: 20`
}

/** Pull requests: validate, plan and the approval gate. */
export function pullRequestWorkflowTemplate(opts: TemplateOptions): string {
  return `# Written by nhi-recover init. Checks every recovery request on its pull request.
# Make the "nhi-recover-approvals" job a required status check in the branch protection
# (or ruleset) of the default branch, so nothing merges without the approvals its tier needs.
name: nhi-recover
on:
  pull_request:
    types: [opened, synchronize, reopened, ready_for_review]
  # Re-evaluate when someone approves, requests changes or a review is dismissed.
  pull_request_review:
    types: [submitted, edited, dismissed]

# No path filter: a required check must report on every pull request, and a PR that
# touches no spec simply passes.
permissions: {}

concurrency:
  group: nhi-recover-pr-\${{ github.event.pull_request.number }}
  cancel-in-progress: true

env:
  NHI_RECOVER: nhi-recover@${opts.version}

jobs:
  validate:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
${setupSteps(false)}
      - run: npx --yes "$NHI_RECOVER" validate

  plan:
    runs-on: ubuntu-latest
    needs: validate
    # Pull requests from forks get a read-only token; plan then cannot comment.
    permissions:
      contents: read
      pull-requests: write # the one sticky plan comment
      statuses: write # the nhi-recover/approvals commit status
    steps:
${setupSteps(false)}
      - run: npx --yes "$NHI_RECOVER" plan --pr "$PR"
        env:
          PR: \${{ github.event.pull_request.number }}
          GITHUB_TOKEN: \${{ github.token }}

  # No "needs": a job skipped because another failed counts as passed for a required check.
  nhi-recover-approvals:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      pull-requests: read
    steps:
${setupSteps(false)}
      # Team membership needs read:org, which the workflow token lacks: store a token that
      # can read the org's teams as the secret NHI_RECOVER_GITHUB_TOKEN.
      - run: npx --yes "$NHI_RECOVER" approvals check --pr "$PR"
        env:
          PR: \${{ github.event.pull_request.number }}
          GITHUB_TOKEN: \${{ secrets.NHI_RECOVER_GITHUB_TOKEN || github.token }}
`
}

/** The default branch: execute approved requests. The only job that may get OIDC tokens. */
export function executeWorkflowTemplate(opts: TemplateOptions): string {
  return `# Written by nhi-recover init. Executes approved recovery requests after they merge.
# execute runs the approval gate again itself and fails closed.
name: nhi-recover execute
on:
  push:
    paths: ['recovery-specs/**']
  workflow_dispatch: {}
  # A later run retires previous credentials whose retention has passed:
  # schedule:
  #   - cron: '17 * * * *'

permissions: {}

# One executor at a time; never cancel a running rotation.
concurrency:
  group: nhi-recover-execute
  cancel-in-progress: false

env:
  NHI_RECOVER: nhi-recover@${opts.version}

jobs:
  execute:
    # Only the default branch executes, whatever it is called.
    if: github.ref == format('refs/heads/{0}', github.event.repository.default_branch)
    runs-on: ubuntu-latest
    # Protect this environment (required reviewers, branch rules) and keep provider
    # credentials in it rather than in repository secrets.
    environment: nhi-recover
    permissions:
      contents: write # push the signed audit commit
      pull-requests: read # find the merged PR and its reviews
      id-token: write # OIDC for Vault/OpenBao jwt auth and AWS roles
    steps:
${setupSteps(true)}
      - run: npx --yes "$NHI_RECOVER" execute
        env:
          GITHUB_TOKEN: \${{ secrets.NHI_RECOVER_GITHUB_TOKEN || github.token }}
`
}

/** A CODEOWNERS suggestion; init never overwrites a real CODEOWNERS. */
export function codeownersTemplate(opts: TemplateOptions): string {
  const o = opts.securityTeam
  return `# Suggested by nhi-recover init. Review the owner, then merge these lines into
# .github/CODEOWNERS and require code owner reviews on the default branch.
/nhi-recover.yaml ${o}
/recovery-specs/ ${o}
/.nhi-recover/ ${o}
/audit/ ${o}
/.github/workflows/nhi-recover-*.yml ${o}
/.github/CODEOWNERS ${o}
`
}

export const RECOVERY_SPECS_README = `# Recovery requests

One YAML file per request. Create one with \`nhi-recover new\` (a wizard in a terminal,
flags in CI), open a pull request, and get the approvals its tier needs.
\`nhi-recover validate\` checks every file here; \`schema/\` holds the JSON Schemas that
editors use through each file's \`# yaml-language-server: $schema=\` line.

A spec names where a credential lives, never the credential itself.
`

export const ALLOWED_SIGNERS_TEMPLATE = `# SSH keys allowed to sign approvals, one per line, in ssh-keygen's allowed_signers format:
#   alice@example.com namespaces="nhi-recover-approval" ssh-ed25519 AAAA...
# The copy on the base branch is the one in force, so a pull request cannot add its own signer.
`

export const AUDIT_GITKEEP = ''

/** Keeps the local provider's store and any key files out of git; the store holds credentials. */
export const NHI_DIR_GITIGNORE = `# The local provider's encrypted store and key files never belong in git.
local-store/
*.key
`
