/**
 * The `nhi-recover new` wizard. It asks for each answer the flags did not give, with choices
 * from the repo config and the schema, then shows the service's own check result and
 * writes nothing itself: it hands valid answers back, or undefined when cancelled.
 * Private to src/ui: reached through renderNewSpecWizard.
 */
import { useState } from 'react'
import { Box, Text, useApp, useInput } from 'ink'
import SelectInput from 'ink-select-input'
import TextInput from 'ink-text-input'
import { FIELDS, TARGET_FIELDS, targetQuestion, type AnswerKey, type Answers } from '../../new/fields.js'
import type { NewSpecSession } from '../../new/new-spec.js'
import { formatProblem } from '../../spec/problems.js'
import { detectSecret } from '../../spec/inline-secrets.js'
import type { Mechanism } from '../../spec/schema.js'

export type WizardSession = Pick<NewSpecSession, 'given' | 'initial' | 'choices' | 'check'>

export interface NewSpecWizardProps {
  session: WizardSession
  onDone(answers: Answers | undefined): void
}

interface Step {
  key: AnswerKey
  question: string
  /** A select step has items; a text step has none. */
  items?: Array<{ label: string; value: string }>
}

const options = (values: readonly string[]) => values.map((v) => ({ label: v, value: v }))

/** The questions for the answers so far; later ones depend on earlier ones (mechanism, action). */
function stepsFor(a: Answers, choices: WizardSession['choices']): Step[] {
  const q = (key: AnswerKey) => FIELDS[key].question
  const providers = choices.providersFor(a.type)
  const steps: Step[] = [
    { key: 'identity', question: q('identity') },
    { key: 'type', question: q('type'), items: options(choices.types) },
    { key: 'owner', question: q('owner') },
    { key: 'risk', question: q('risk'), items: options(choices.risks) },
    {
      key: 'provider',
      question: q('provider'),
      items: (providers.length > 0 ? providers : choices.providers).map((p) => ({
        label: `${p.name} (${p.kind})`,
        value: p.name,
      })),
    },
    { key: 'mechanism', question: q('mechanism'), items: options(choices.mechanismsFor(a.type, a.provider)) },
  ]
  const mech = a.mechanism as Mechanism | undefined
  for (const key of (mech && TARGET_FIELDS[mech]) || []) {
    steps.push({ key, question: targetQuestion(key, mech) })
  }
  steps.push({ key: 'action', question: q('action'), items: options(choices.actions) })
  if (a.action === 'rollback') steps.push({ key: 'rollbackOf', question: q('rollbackOf') })
  steps.push(
    { key: 'reason', question: q('reason') },
    { key: 'ticket', question: q('ticket') },
    { key: 'requester', question: q('requester') },
    { key: 'requesterKind', question: q('requesterKind'), items: options(choices.requesterKinds) },
    { key: 'expiresIn', question: q('expiresIn') },
    { key: 'retainPrevious', question: q('retainPrevious') },
  )
  return steps
}

type Phase = { name: 'ask'; key: AnswerKey; thenReview: boolean } | { name: 'review' } | { name: 'edit' }

/** A value shown back to the user, unless it looks like a credential. */
function shown(value: string | undefined): string {
  if (!value) return ''
  return detectSecret(value) ? '(hidden: looks like a secret)' : value
}

export function NewSpecWizard({ session, onDone }: NewSpecWizardProps) {
  const { exit } = useApp()
  const isGiven = (k: AnswerKey) => Boolean(session.given[k]?.trim())
  const [answers, setAnswers] = useState<Answers>(session.initial)
  const steps = stepsFor(answers, session.choices)
  const toAsk = steps.filter((s) => !isGiven(s.key))
  const [phase, setPhase] = useState<Phase>(() =>
    toAsk[0] ? { name: 'ask', key: toAsk[0].key, thenReview: false } : { name: 'review' },
  )
  const [draft, setDraft] = useState(() => (phase.name === 'ask' ? (answers[phase.key] ?? '') : ''))
  const [notice, setNotice] = useState<string | undefined>()

  const finish = (result: Answers | undefined) => {
    onDone(result)
    exit()
  }
  useInput((_input, key) => {
    if (key.escape) finish(undefined)
  })

  /** Moves on from a step: the next unanswered question, or the review. */
  const advance = (next: Answers, from: AnswerKey, thenReview: boolean) => {
    setAnswers(next)
    setNotice(undefined)
    const nextSteps = stepsFor(next, session.choices).filter((s) => !isGiven(s.key))
    const missing = nextSteps.find((s) => !next[s.key]?.trim())
    if (thenReview) {
      setPhase(missing ? askWith(next, missing.key, true) : { name: 'review' })
      return
    }
    const i = nextSteps.findIndex((s) => s.key === from)
    const following = nextSteps[i + 1]
    setPhase(following ? askWith(next, following.key, false) : { name: 'review' })
  }
  const askWith = (a: Answers, key: AnswerKey, thenReview: boolean): Phase => {
    setDraft(a[key] ?? '')
    return { name: 'ask', key, thenReview }
  }

  const header = <Text bold>nhi-recover new: a recovery request</Text>

  if (phase.name === 'ask') {
    const step = steps.find((s) => s.key === phase.key)!
    const position = toAsk.findIndex((s) => s.key === phase.key) + 1
    const answer = (value: string) =>
      advance({ ...answers, [step.key]: value.trim() }, step.key, phase.thenReview)
    return (
      <Box flexDirection="column">
        {header}
        <Text>
          <Text dimColor>
            [{position}/{toAsk.length}]
          </Text>{' '}
          {step.question}
        </Text>
        {step.items ? (
          step.items.length > 0 ? (
            <SelectInput
              items={step.items}
              initialIndex={Math.max(
                0,
                step.items.findIndex((i) => i.value === answers[step.key]),
              )}
              onSelect={(item) => answer(item.value)}
            />
          ) : (
            <Text color="red">
              Nothing in nhi-recover.yaml fits the answers so far; press Esc and change the config or the
              answers.
            </Text>
          )
        ) : (
          <Box>
            <Text color="cyan">{'> '}</Text>
            <TextInput
              value={draft}
              onChange={setDraft}
              onSubmit={(value) => {
                if (!value.trim()) setNotice('An answer is required.')
                else answer(value)
              }}
            />
          </Box>
        )}
        {notice ? <Text color="yellow">{notice}</Text> : null}
        <Text dimColor>Enter to confirm, Esc to cancel</Text>
      </Box>
    )
  }

  if (phase.name === 'edit') {
    return (
      <Box flexDirection="column">
        {header}
        <Text>Which answer do you want to change?</Text>
        <SelectInput
          items={toAsk.map((s) => ({ label: s.question, value: s.key }))}
          onSelect={(item) => setPhase(askWith(answers, item.value, true))}
        />
      </Box>
    )
  }

  const result = session.check(answers)
  const inputErrors = result.inputErrors.map((e) => `${FIELDS[e.field].label}: ${e.message}`)
  const problems = result.problems.map(formatProblem)
  const ok = inputErrors.length === 0 && problems.length === 0 && result.missing.length === 0
  const menu = [
    ...(ok ? [{ label: `Write ${result.file}`, value: 'write' }] : []),
    { label: 'Change an answer', value: 'edit' },
    { label: 'Cancel (write nothing)', value: 'cancel' },
  ]
  return (
    <Box flexDirection="column">
      {header}
      {steps.map((s) => (
        <Text key={s.key}>
          <Text dimColor>{FIELDS[s.key].label}:</Text> {shown(answers[s.key])}
        </Text>
      ))}
      {ok ? (
        <Text color="green">
          ✔ Valid. The request {result.id} will be written to {result.file}.
        </Text>
      ) : (
        <Box flexDirection="column">
          <Text color="red">✖ Not valid yet; nothing will be written until these are fixed:</Text>
          {[...inputErrors, ...problems].map((line) => (
            <Text key={line} color="red">
              {'  '}
              {line}
            </Text>
          ))}
        </Box>
      )}
      <SelectInput
        items={menu}
        onSelect={(item) => {
          if (item.value === 'write') finish(answers)
          else if (item.value === 'cancel') finish(undefined)
          else setPhase({ name: 'edit' })
        }}
      />
    </Box>
  )
}
