'use strict'
// The three-way merge and the diff of JSON values in JS, rule for rule those
// of crates/file-lock-core/src/json_merge/{merge,diff}.rs (which JsonDocument
// runs off the JS thread on texts): same merged value, member and element
// order included, same conflicts and changes in the same order, same paths.
//
// Invariants:
// - The values are JSON data as JSON.parse makes it (json-form.js sees to
//   that): plain objects and arrays, strings, finite numbers (no -0), booleans
//   and null; `undefined` is an absent value, never a member's value.
// - Nothing given is modified; the result shares with the inputs every part
//   the merge took as it was (a conflict's values too).
// - Every tie between the sides is broken by content, never by a side's name
//   (text-forms.js orders as Rust orders), so swapping mine and theirs gives
//   the same merged value and mirrored conflicts.

const { setMember } = require('../json-slices.js')
const { deepEqual: equal } = require('../json-values.js')
const { canonicalJson, compareAsRust, pathText } = require('./text-forms.js')
const { objectMembers, elementMembers, mergeOrder, sameList } = require('./keyed.js')

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value)

// How a path names a member (text-forms.js pathText): an object's by its
// key, an id array's by its id.
const keySegment = (key) => key
const idSegment = (id) => ({ id })
const segmentOf = (members) => (members.ordered ? idSegment : keySegment)

/**
 * Three-way merge of `base` with `mine` and `theirs` (JSON data): `{ merged,
 * conflicts, clean }` as mergeJson returns it. `favor`: undefined, 'mine' or
 * 'theirs'.
 */
function mergeValues(base, mine, theirs, arrayKey, favor) {
  const merger = new Merger(arrayKey, favor)
  const merged = merger.value(base, mine, theirs)
  return { merged, conflicts: merger.conflicts, clean: merger.conflicts.length === 0 }
}

class Merger {
  path = [] // where the value being merged sits: keys, and { id } for elements
  conflicts = []

  constructor(arrayKey, favor) {
    this.arrayKey = arrayKey
    this.favor = favor
  }

  /**
   * Merges one value; undefined (in and out) is an absent one. A member of an
   * object or id array is named in paths by `segment(key)`, made only when
   * both sides changed it (most members of a big document are not).
   */
  value(base, mine, theirs, segment, key) {
    if (equal(mine, theirs)) return mine
    if (equal(mine, base)) return theirs
    if (equal(theirs, base)) return mine
    if (segment === undefined) return this.bothChanged(base, mine, theirs)
    this.path.push(segment(key))
    const merged = this.bothChanged(base, mine, theirs)
    this.path.pop()
    return merged
  }

  /** Both sides changed the value, and not the same way. */
  bothChanged(base, mine, theirs) {
    if (mine === undefined || theirs === undefined) {
      // One side deleted; the other changed it (had it kept it as in base,
      // the deletion would have won).
      this.conflict('delete-modify', base, mine, theirs, mine === undefined ? 'mine' : 'theirs')
      return this.favor === undefined ? base : this.favored(mine, theirs)
    }
    if ((base === undefined || isObject(base)) && isObject(mine) && isObject(theirs)) {
      // (Absent in base: both added it, merged against no members.)
      const members = objectMembers(base, mine, theirs)
      const { order, values } = this.keyed(members)
      const merged = {}
      for (const slot of order) setMember(merged, members.keys[slot], values[slot])
      return merged
    }
    if ((base === undefined || Array.isArray(base)) && Array.isArray(mine) && Array.isArray(theirs)) {
      const members = elementMembers(this.arrayKey, base, mine, theirs)
      if (members !== null) {
        const { order, values } = this.keyed(members)
        return order.map((slot) => values[slot])
      }
    }
    this.conflict(base === undefined ? 'both-added' : 'both-modified', base, mine, theirs)
    if (this.favor !== undefined) return this.favored(mine, theirs)
    if (base !== undefined) return base
    // Both added: the same pick whichever side runs the merge.
    return compareAsRust(canonicalJson(mine), canonicalJson(theirs)) <= 0 ? mine : theirs
  }

  favored(mine, theirs) {
    return this.favor === 'mine' ? mine : theirs
  }

  /**
   * Merges an object or an id array member by member (`members`: base, mine,
   * theirs): the slots in merged order, and the merged value of each. Conflicts
   * inside come in that order too, after the array's own `order` conflict
   * (merge.rs: members are merged in slot order, which is not symmetric; the
   * result order is).
   */
  keyed(members) {
    const segment = segmentOf(members)
    const [base, mine, theirs] = members.values
    const start = this.conflicts.length
    const spans = [] // [slot, how many conflicts it added], for members that added any
    const values = new Array(members.size)
    for (let slot = 0; slot < members.size; slot++) {
      const before = this.conflicts.length
      values[slot] = this.value(base[slot], mine[slot], theirs[slot], segment, members.keys[slot])
      if (this.conflicts.length > before) spans.push([slot, this.conflicts.length - before])
    }

    const { order, clash } = mergeOrder(members, this.favor, (slot) => values[slot] !== undefined)
    const orderConflict = members.ordered && clash
    if (spans.length > 1 || orderConflict) {
      const rank = new Map(order.map((slot, i) => [slot, i]))
      const inside = this.conflicts.splice(start)
      let taken = 0
      const chunks = spans.map(([slot, count]) => ({ rank: rank.get(slot) ?? Infinity, conflicts: inside.slice(taken, (taken += count)) }))
      chunks.sort((a, b) => a.rank - b.rank) // stable: unranked (deleted) members keep their order, last
      if (orderConflict) this.conflict('order', members.keysOf(0), members.keysOf(1), members.keysOf(2))
      for (const chunk of chunks) for (const conflict of chunk.conflicts) this.conflicts.push(conflict)
    }
    return { order, values }
  }

  /** Records a conflict at the current path; a side where the value is absent is left out. */
  conflict(kind, base, mine, theirs, deletedBy) {
    const conflict = { path: pathText(this.path, this.arrayKey), kind }
    if (base !== undefined) conflict.base = base
    if (mine !== undefined) conflict.mine = mine
    if (theirs !== undefined) conflict.theirs = theirs
    if (deletedBy !== undefined) conflict.deletedBy = deletedBy
    this.conflicts.push(conflict)
  }
}

/**
 * What changed from `before` to `after` (JSON data), as diffJson returns it:
 * objects and id arrays member by member, anything else as one `changed`.
 */
function diffValues(before, after, arrayKey) {
  const differ = new Differ(arrayKey)
  differ.value(before, after)
  return differ.changes
}

class Differ {
  path = []
  changes = []

  constructor(arrayKey) {
    this.arrayKey = arrayKey
  }

  value(before, after) {
    if (equal(before, after)) return
    if (isObject(before) && isObject(after)) return this.keyed(objectMembers(before, after))
    if (Array.isArray(before) && Array.isArray(after)) {
      const members = elementMembers(this.arrayKey, before, after)
      if (members !== null) return this.keyed(members)
    }
    this.record('changed', before, after)
  }

  // `members`: before, after.
  keyed(members) {
    const segment = segmentOf(members)
    const [before, after] = members.values
    const [beforeOrder, afterOrder] = members.orders
    if (members.ordered) {
      const inBoth = (slot) => before[slot] !== undefined && after[slot] !== undefined
      if (!sameList(beforeOrder.filter(inBoth), afterOrder.filter(inBoth))) this.record('reordered', members.keysOf(0), members.keysOf(1))
    }
    for (const slot of beforeOrder) {
      const b = before[slot]
      const a = after[slot]
      if (a === b) continue // value() looks deeper: no walk of an equal pair twice
      this.path.push(segment(members.keys[slot]))
      if (a === undefined) this.record('removed', b, undefined)
      else this.value(b, a)
      this.path.pop()
    }
    for (const slot of afterOrder) {
      if (before[slot] !== undefined) continue
      this.path.push(segment(members.keys[slot]))
      this.record('added', undefined, after[slot])
      this.path.pop()
    }
  }

  record(kind, before, after) {
    const change = { path: pathText(this.path, this.arrayKey), kind }
    if (before !== undefined) change.before = before
    if (after !== undefined) change.after = after
    this.changes.push(change)
  }
}

module.exports = { mergeValues, diffValues }
