// Types of merge.js: the three-way JSON merge and the JSON diff used when a
// document edited here meets a change another process made on disk.

/**
 * How deeply values may nest (arrays and objects inside each other; `[]` is one
 * level): 1000, the one limit of the whole package. `mergeJson`/`diffJson`
 * refuse deeper values, documents refuse deeper files (`ECORRUPT`) and values
 * (`set`/`update`/`edit`/`defaultValue`: `ERR_INVALID_ARG_VALUE`).
 */
export declare const MAX_JSON_DEPTH: number

/** A value as JSON has it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/**
 * Where a value sits in a document, JSONPath-like: `$` is the root, `.name` an
 * identifier-like key, `["odd key"]` any other key, and `[id="admin"]` /
 * `[id=7]` the element of an id array whose id is `"admin"` / `7` (with the
 * `arrayKey` in place of `id`, quoted if not identifier-like). Elements of id
 * arrays are never named by index. Example: `$.roles[id="admin"].permissions`.
 */
export type JsonPath = string

/** Options of `diffJson` (and `mergeJson`). */
export interface DiffOptions {
  /**
   * The member that identifies the elements of arrays of objects. An array
   * (in every version involved) whose elements are all objects with a string or
   * number under this key, no id twice, is merged element by element by id;
   * any other array is one atomic value. Default `'id'`; a non-empty string.
   */
  arrayKey?: string
}

/** Options of `mergeJson`. */
export interface MergeOptions extends DiffOptions {
  /**
   * Decide every conflict for this side: its value (its deletion, its order of
   * an id array) wins where both sides changed the same thing; everything else
   * merges as usual. `conflicts` still lists what was decided that way. For
   * "keep mine" / "keep theirs" after a conflict. Default: no side, `merged`
   * keeps the base value at conflicts.
   */
  favor?: 'mine' | 'theirs'
}

/**
 * What `merged` holds at each kind of conflict, without `favor` (with `favor`
 * it holds that side's value, absence or order instead):
 * - `both-modified`: both sides changed the value differently; `merged` keeps `base`.
 * - `delete-modify`: one side (`deletedBy`) deleted what the other changed; `merged` keeps `base`.
 * - `both-added`: absent in base, added with different values on both sides (and
 *   not two objects or two id arrays, which merge member by member); `merged`
 *   holds the value whose canonical JSON (keys sorted) sorts first, the same
 *   whichever side runs the merge.
 * - `order`: both sides reordered an id array differently; `base`, `mine` and
 *   `theirs` are then the three id lists; `merged` keeps the base order (the
 *   other changes to the array, and its elements, still merge).
 */
export type MergeConflictKind = 'both-modified' | 'delete-modify' | 'both-added' | 'order'

/**
 * One place both sides changed differently (with `favor`: decided for that side). `base`, `mine` and `theirs` are the
 * values there in each version; a field is left out (not `null`) where the value
 * is absent in that version (the key or element does not exist there).
 */
export interface MergeConflict {
  path: JsonPath
  kind: MergeConflictKind
  base?: JsonValue
  mine?: JsonValue
  theirs?: JsonValue
  /** For `delete-modify`: the side that deleted. */
  deletedBy?: 'mine' | 'theirs'
}

/** The outcome of `mergeJson`. */
export interface MergeResult<T = JsonValue> {
  /**
   * The merged value; where there are conflicts, the merge so far with the
   * base value at each conflict (with `favor`, that side's value). Object keys
   * keep their order in the documents (added ones after their predecessor).
   */
  merged: T
  /**
   * In document order of `merged` (a container's `order` conflict first; with
   * `favor`, conflicts at what the favored side deleted last); empty when clean.
   */
  conflicts: MergeConflict[]
  /** `conflicts.length === 0`. */
  clean: boolean
}

/**
 * - `added` (`after` only) / `removed` (`before` only): a member or id-array element.
 * - `changed`: a different value that is not two objects or two id arrays
 *   (those are reported member by member); plain arrays change as a whole.
 * - `reordered`: the elements both versions of an id array have are in another
 *   relative order; reported once at the array's path, before its elements'
 *   changes, with `before` and `after` the two id lists.
 */
export type JsonChangeKind = 'added' | 'removed' | 'changed' | 'reordered'

/** One difference between two versions of a document. */
export interface JsonChange {
  path: JsonPath
  kind: JsonChangeKind
  before?: JsonValue
  after?: JsonValue
}

/**
 * Three-way merge: `base` was edited into `mine` here and into `theirs`
 * elsewhere. Where only one side changed a value, that change wins; where both
 * made the same change, it is taken once; objects (and id arrays, see
 * `MergeOptions.arrayKey`) changed on both sides merge member by member, so edits
 * of different fields of the same element merge cleanly. Anything else changed
 * on both sides is a conflict. The result is the same whichever side is `mine`
 * (conflicts mirrored). Additions to an id array land right after their nearest
 * preceding element; a reorder on one side is kept.
 *
 * The values merged are what `JSON.stringify` makes of the arguments; every
 * string it can write is merged, lone UTF-16 surrogates included (in values,
 * keys and ids: they come back exactly as they were).
 *
 * The arguments are never modified, but the result shares with them what the
 * merge took as it was: `merged` (and a conflict's `base`/`mine`/`theirs`) may
 * hold the very objects and arrays given (frozen ones stay frozen), not
 * copies; copy before changing them in place (`structuredClone`). Parts with
 * no JSON form as they are (a `toJSON`, a Date, an undefined member, `-0`)
 * come back as their JSON form, in new objects. The merge runs in JS on the
 * calling thread (documents run the same rules in Rust off it).
 * @throws {TypeError} `ERR_INVALID_ARG_TYPE` for bad options,
 *   `ERR_INVALID_ARG_VALUE` for an unknown `favor`, an `arrayKey` with a lone
 *   surrogate, or a value with no JSON form (undefined, a function or symbol,
 *   a BigInt anywhere, a cycle) or nested more than `MAX_JSON_DEPTH` (1000)
 *   levels (the message names the argument and the limit).
 */
export declare function mergeJson<T = JsonValue>(base: unknown, mine: unknown, theirs: unknown, options?: MergeOptions): MergeResult<T>

/**
 * What changed from `before` to `after`, in document order, with the paths of
 * `mergeJson`: objects and id arrays member by member, anything else as one
 * `changed` value. Empty when the two are equal. Like `mergeJson`'s result, a
 * change's `before`/`after` may be the very values given, not copies.
 * @throws {TypeError} like `mergeJson`.
 */
export declare function diffJson(before: unknown, after: unknown, options?: DiffOptions): JsonChange[]
