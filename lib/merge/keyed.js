'use strict'
// Objects and id arrays seen the same way, as members under keys (an object
// key, or an element's id), for the merge and the diff; and the order of a
// merged object or id array (crates/file-lock-core/src/json_merge/keyed.rs,
// merge.rs `merge_order`).
//
// Invariant: an array is keyed only when every element is an object with a
// string or number id under the array key and no id repeats; otherwise it is
// one atomic value. A string id never equals a number id (a Map tells "7"
// from 7), and numbers that are equal are the same id, as in Rust. Members
// are visited, and ties between the sides broken, as Rust does.

const { compareLists, compareAsRust, compareIds } = require('./text-forms.js')

/**
 * The members of two or three versions (base, mine, theirs; before, after)
 * of an object or an id array, in one table: every key once, numbered (its
 * slot) in the order Rust visits them — the first version's keys, then the
 * second's new ones, then the third's — so a merge or diff is one pass over
 * the slots, and a big id array costs one Map look-up an element.
 */
class Members {
  keys = [] // slot → key (an object key, or an element's id)
  slots = new Map() // key → slot
  values = [] // version → slot → value; undefined where the version has none
  orders = [] // version → its slots in document order

  /** `ordered`: an id array's (the order of members means something, and can conflict). */
  constructor(ordered) {
    this.ordered = ordered
  }

  get size() {
    return this.keys.length
  }

  /** How Rust sorts the keys of two slots. */
  compare(a, b) {
    return this.ordered ? compareIds(this.keys[a], this.keys[b]) : compareAsRust(this.keys[a], this.keys[b])
  }

  /** The keys of a version, in its order (an id list of an `order` conflict). */
  keysOf(version) {
    return this.orders[version].map((slot) => this.keys[slot])
  }

  /** A new version, without members yet; returns its number. */
  addVersion() {
    this.values.push([])
    this.orders.push([])
    return this.values.length - 1
  }

  /** Puts `value` under `key` in `version`: false if it has that key already. */
  add(version, key, value) {
    let slot = this.slots.get(key)
    if (slot === undefined) {
      slot = this.keys.length
      this.keys.push(key)
      this.slots.set(key, slot)
    }
    const values = this.values[version]
    if (values[slot] !== undefined) return false
    values[slot] = value
    this.orders[version].push(slot)
    return true
  }
}

/** The members of objects, versions in the order given (undefined: absent, none). */
function objectMembers(...objects) {
  const members = new Members(false)
  for (const object of objects) {
    const version = members.addVersion()
    if (object !== undefined) for (const key of Object.keys(object)) members.add(version, key, object[key])
  }
  return members
}

/**
 * The elements of id arrays by id, versions in the order given (undefined:
 * absent, none); null unless in every one each element is an object with a
 * string or number under `arrayKey` and no id repeats: only then can elements
 * be matched by id.
 */
function elementMembers(arrayKey, ...arrays) {
  const members = new Members(true)
  for (const items of arrays) {
    const version = members.addVersion()
    if (items === undefined) continue
    for (const item of items) {
      if (item === null || typeof item !== 'object' || Array.isArray(item) || !Object.hasOwn(item, arrayKey)) return null
      const id = item[arrayKey]
      if (typeof id !== 'string' && typeof id !== 'number') return null
      if (!members.add(version, id, item)) return null // the id twice
    }
  }
  return members
}

function sameList(a, b) {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * The order of the merged members of `members` (versions base, mine, theirs),
 * as slots (`survives(slot)`: the member is in the result), and whether both
 * sides reordered differently (`clash`), by merge.rs's rules: a side
 * reordered if the members all three have are in another relative order
 * there than in base. The primary list is the side that reordered, if only
 * one did; the list that sorts first, if neither did or both did the same
 * way; at a clash, base (or the favored side's). The result is the primary
 * list's survivors, plus the other lists' (at a clash without favor both
 * sides', the one that sorts first first), each right after its nearest
 * preceding member in its own list that is already in, or at the start.
 */
function mergeOrder(members, favor, survives) {
  const [inBase, inMine, inTheirs] = members.values
  const inAll = (slot) => inBase[slot] !== undefined && inMine[slot] !== undefined && inTheirs[slot] !== undefined
  const [base, mine, theirs] = members.orders
  const commonBase = base.filter(inAll)
  const commonMine = mine.filter(inAll)
  const commonTheirs = theirs.filter(inAll)
  const mineMoved = !sameList(commonMine, commonBase)
  const theirsMoved = !sameList(commonTheirs, commonBase)
  const mineFirst = compareLists(mine, theirs, (a, b) => members.compare(a, b)) <= 0
  const [first, second] = mineFirst ? [mine, theirs] : [theirs, mine]
  let primary = first
  let others = [second]
  let clash = false
  if (mineMoved && !theirsMoved) [primary, others] = [mine, [theirs]]
  else if (theirsMoved && !mineMoved) [primary, others] = [theirs, [mine]]
  else if (mineMoved && theirsMoved && !sameList(commonMine, commonTheirs)) {
    clash = true
    if (favor === 'mine') [primary, others] = [mine, [theirs]]
    else if (favor === 'theirs') [primary, others] = [theirs, [mine]]
    else [primary, others] = [base, [first, second]]
  }

  const list = new Splice(members.size)
  for (const slot of primary) if (survives(slot)) list.insertAfter(list.last, slot)
  for (const other of others) {
    // Every surviving member before this one in `other` is in the list by now.
    let previous = -1
    for (const slot of other) {
      if (survives(slot)) previous = list.has(slot) ? slot : list.insertAfter(previous, slot)
    }
  }
  return { order: list.inOrder(), clash }
}

/**
 * A singly linked list of slots, each in it at most once: O(1) insertion
 * right after any member, so merging big arrays stays linear.
 */
class Splice {
  head = -1
  last = -1

  constructor(size) {
    this.next = new Int32Array(size) // the slot after each, -1 after the last
    this.placed = new Uint8Array(size)
  }

  has(slot) {
    return this.placed[slot] === 1
  }

  /** Inserts `slot` after the slot `after` (at the start for -1); returns it. */
  insertAfter(after, slot) {
    this.placed[slot] = 1
    if (after < 0) {
      this.next[slot] = this.head
      this.head = slot
    } else {
      this.next[slot] = this.next[after]
      this.next[after] = slot
    }
    if (this.next[slot] < 0) this.last = slot
    return slot
  }

  inOrder() {
    const out = []
    for (let at = this.head; at >= 0; at = this.next[at]) out.push(at)
    return out
  }
}

module.exports = { objectMembers, elementMembers, mergeOrder, sameList }
