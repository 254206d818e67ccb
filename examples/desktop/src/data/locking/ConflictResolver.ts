// ConflictResolver: the merge logic, for people. Wraps the package's three-way
// `mergeJson`, turns a document `conflict` event into a plain (IPC-safe)
// description a dialog can show ("Role "admin" › name: you changed it to …,
// another window to …"), and holds the policy helpers: decide a choice
// automatically or ask, then resolve the event with it.
import { mergeJson } from 'file-lock-manager'
import type { DocumentConflictEvent, JsonValue, MergeConflict, MergeResult } from 'file-lock-manager'

export type { MergeConflict } from 'file-lock-manager'

/** How a conflict is settled: that side wins each clash (the rest merges), or base values at the clashes. */
export type ConflictChoice = 'mine' | 'theirs' | 'merged'

export interface ConflictItem {
  path: string
  kind: MergeConflict['kind']
  /** The place, readable: `Role "admin" › name`. */
  label: string
  /** One sentence for the dialog. */
  text: string
  base?: JsonValue
  mine?: JsonValue
  theirs?: JsonValue
  deletedBy?: 'mine' | 'theirs'
}

export interface ConflictDescription {
  summary: string
  items: ConflictItem[]
}

/** Labels a path segment; the default shows `[id="admin"]` as `admin`. */
export type SegmentLabeler = (segment: PathSegment, parents: readonly PathSegment[]) => string

export type PathSegment = { key: string } | { arrayKey: string; id: string | number }

// `.name`, `["odd key"]`, `[id="admin"]`, `[id=7]`, `["odd id key"="x"]`
const SEGMENT = /\.([A-Za-z_$][\w$]*)|\[("(?:[^"\\]|\\.)*")\]|\[("(?:[^"\\]|\\.)*"|[A-Za-z_$][\w$]*)=("(?:[^"\\]|\\.)*"|[^\]]+)\]/g

/** The segments of a merge path (`$.roles[id="admin"].name`). */
export function parsePath(path: string): PathSegment[] {
  const segments: PathSegment[] = []
  for (const m of path.slice(1).matchAll(SEGMENT)) {
    if (m[1] !== undefined) segments.push({ key: m[1] })
    else if (m[2] !== undefined) segments.push({ key: JSON.parse(m[2]) as string })
    else {
      const arrayKey = m[3]!.startsWith('"') ? (JSON.parse(m[3]!) as string) : m[3]!
      const id = JSON.parse(m[4]!) as string | number
      segments.push({ arrayKey, id })
    }
  }
  return segments
}

const defaultLabel: SegmentLabeler = (segment) => ('key' in segment ? segment.key : String(segment.id))

/** `$.roles[id="admin"].name` → `roles › admin › name` (or as `label` says). */
export function describePath(path: string, label: SegmentLabeler = defaultLabel): string {
  const segments = parsePath(path)
  if (segments.length === 0) return 'the whole file'
  return segments.map((segment, i) => label(segment, segments.slice(0, i))).filter((text) => text !== '').join(' › ')
}

function show(value: JsonValue | undefined): string {
  const text = JSON.stringify(value)
  return text === undefined ? '(nothing)' : text.length > 60 ? `${text.slice(0, 57)}…` : text
}

function sentence(c: MergeConflict, label: string): string {
  switch (c.kind) {
    case 'both-modified':
      return `${label}: you changed it to ${show(c.mine)}, another window to ${show(c.theirs)}`
    case 'delete-modify':
      return c.deletedBy === 'theirs' ? `${label}: deleted in another window while you changed it` : `${label}: you deleted it while another window changed it`
    case 'both-added':
      return `${label}: added here as ${show(c.mine)} and in another window as ${show(c.theirs)}`
    case 'order':
      return `${label}: reordered differently here and in another window`
    default:
      return `${label}: changed differently here and in another window`
  }
}

/** A plain, serializable description of the conflicts (for a dialog, over IPC). */
export function describeConflict(conflicts: readonly MergeConflict[], label?: SegmentLabeler): ConflictDescription {
  const items = conflicts.map((c): ConflictItem => {
    const where = describePath(c.path, label)
    const item: ConflictItem = { path: c.path, kind: c.kind, label: where, text: sentence(c, where) }
    if ('base' in c) item.base = c.base
    if ('mine' in c) item.mine = c.mine
    if ('theirs' in c) item.theirs = c.theirs
    if (c.deletedBy !== undefined) item.deletedBy = c.deletedBy
    return item
  })
  const n = items.length
  return { summary: `${n} conflicting change${n === 1 ? '' : 's'} with another window`, items }
}

/** Three-way merge (the documents' own): `arrayKey` arrays merge element by element. */
export function mergeValues<T>(base: T, mine: T, theirs: T, options: { arrayKey?: string; favor?: 'mine' | 'theirs' } = {}): MergeResult<T> {
  return mergeJson<T>(base, mine, theirs, { arrayKey: options.arrayKey ?? 'id', ...(options.favor ? { favor: options.favor } : {}) })
}

/** 'ask' the user, a fixed choice, or a function of the description. */
export type ConflictPolicy = 'ask' | ConflictChoice | ((description: ConflictDescription) => ConflictChoice | 'ask')

export function decide(policy: ConflictPolicy, description: ConflictDescription): ConflictChoice | 'ask' {
  return typeof policy === 'function' ? policy(description) : policy
}

/** A policy: a role deleted in another window stays deleted; anything else is asked. */
export const keepTheirDeletions: ConflictPolicy = (d) => (d.items.every((i) => i.kind === 'delete-modify' && i.deletedBy === 'theirs') ? 'theirs' : 'ask')

/** Resolves a document conflict (the file is backed up first); the value once durable. */
export function resolveConflict<T>(event: DocumentConflictEvent<T>, choice: ConflictChoice | T): Promise<T> {
  return event.resolve(choice)
}
