//! Where a data file's own files live, and what they are called.
//!
//! A data file may be reached through symbolic links (a dotfile manager, a
//! synced folder): its data lives at the end of the chain, so that is where it
//! is locked, written and backed up, whichever spelling a process uses
//! (`follow_links`). Every file we create beside it (the sidecar
//! `.<name>.lock`, the lock-file guards, temp files, the backups folder) must
//! fit the file system's limit on a name, or a file that opens could not be
//! locked or written (`fit`).
//!
//! Invariants:
//! - `fit(lead, name, tail)` is `lead + name + tail` whenever that fits in
//!   `NAME_MAX`, exactly the name earlier versions used (so processes of mixed
//!   versions meet on the same sidecar); otherwise `lead + stem(name) + tail`,
//!   where the stem is a prefix of the name plus a hash of all of it:
//!   recognisable, and the same in every process, version and platform
//!   (FNV-1a 64, a fixed function; not std's hasher, which may change between
//!   Rust releases). document.js builds the backups folder's name the same way
//!   (`fitName`).
//! - A stem is at most `STEM_KEEP + 17` long whatever the tail, so every name
//!   built on it fits, and a stem never depends on the tail: temp files of a
//!   shortened name are recognised by it (`atomic_write::remove_stale_temps`).
//! - `follow_links` resolves at each call (a link may be pointed elsewhere at
//!   any time), through chains and relative links, to a name that need not
//!   exist (a link to a missing file leads to where that file would be).

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};

/// The longest file name: 255 bytes on Unix file systems, 255 UTF-16 units on
/// Windows (NTFS, exFAT).
pub const NAME_MAX: usize = 255;

/// How much of a name a stem keeps (in bytes; UTF-16 units on Windows).
const STEM_KEEP: usize = 96;

/// Symbolic links followed before giving up (Linux's own limit, `ELOOP`).
const MAX_LINKS: usize = 40;

/// `lead + name + tail` when it fits in `NAME_MAX`, else built on `stem(name)`.
pub fn fit(lead: &str, name: &OsStr, tail: &str) -> OsString {
    let mut out = OsString::from(lead);
    if units(OsStr::new(lead)) + units(name) + units(OsStr::new(tail)) <= NAME_MAX {
        out.push(name);
    } else {
        out.push(stem(name));
    }
    out.push(tail);
    out
}

/// A name's shortened stand-in: its first `STEM_KEEP` bytes (whole
/// characters) and `~` with 16 hex digits of a hash of the whole name.
pub fn stem(name: &OsStr) -> OsString {
    let mut out = keep_prefix(name, STEM_KEEP);
    out.push(format!("~{:016x}", fnv1a(name.as_encoded_bytes())));
    out
}

/// The length of a name as the file system counts it.
pub fn units(name: &OsStr) -> usize {
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStrExt;
        name.encode_wide().count()
    }
    #[cfg(not(windows))]
    {
        name.as_encoded_bytes().len()
    }
}

fn char_units(c: char) -> usize {
    if cfg!(windows) {
        c.len_utf16()
    } else {
        c.len_utf8()
    }
}

/// The longest prefix of `name` within `budget` units, never splitting a character.
fn keep_prefix(name: &OsStr, budget: usize) -> OsString {
    if let Some(text) = name.to_str() {
        let mut end = 0;
        let mut used = 0;
        for (at, c) in text.char_indices() {
            used += char_units(c);
            if used > budget {
                break;
            }
            end = at + c.len_utf8();
        }
        return OsString::from(&text[..end]);
    }
    // Not Unicode (only Unix names can be; Node never spells one): whole bytes.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bytes = name.as_bytes();
        OsStr::from_bytes(&bytes[..bytes.len().min(budget)]).to_owned()
    }
    #[cfg(not(unix))]
    {
        keep_prefix(OsStr::new(&*name.to_string_lossy()), budget)
    }
}

/// FNV-1a, 64 bits: tiny, stable, and the same in document.js.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// `std::fs::canonicalize`, in the form people and other programs write:
/// on Windows canonicalize answers with the verbatim prefix (`\\?\C:\...`,
/// `\\?\UNC\server\share\...`), which every path we hand back (a lock's
/// `filePath`, watch events, errors) would carry and which compares unequal
/// to the same path spelled plainly. The prefix is dropped only where the
/// plain form names the same file (as the `dunce` crate does): a drive or UNC
/// path under `MAX_PATH` whose components Win32 would not rewrite (no `.`,
/// `..`, reserved device name, trailing dot or space). Elsewhere: canonicalize.
pub fn canonical(path: &Path) -> io::Result<PathBuf> {
    let resolved = std::fs::canonicalize(path)?;
    #[cfg(windows)]
    {
        Ok(plain_form(&resolved).unwrap_or(resolved))
    }
    #[cfg(not(windows))]
    {
        Ok(resolved)
    }
}

/// The plain spelling of a verbatim path, when it names the same file.
#[cfg(windows)]
fn plain_form(verbatim: &Path) -> Option<PathBuf> {
    let text = verbatim.to_str()?;
    let plain = if let Some(unc) = text.strip_prefix(r"\\?\UNC\") {
        format!(r"\\{unc}")
    } else {
        let rest = text.strip_prefix(r"\\?\")?;
        let bytes = rest.as_bytes();
        if bytes.len() < 3 || !bytes[0].is_ascii_alphabetic() || &bytes[1..3] != b":\\" {
            return None;
        }
        rest.to_owned()
    };
    // MAX_PATH (260) counts the terminating NUL.
    if plain.encode_utf16().count() >= 260 {
        return None;
    }
    let body = plain.trim_start_matches('\\');
    let components = body.split('\\').skip(1); // the drive, or the UNC server
    for part in components {
        if part.is_empty() {
            continue;
        }
        if part == "." || part == ".." || part.ends_with('.') || part.ends_with(' ') {
            return None;
        }
        if part.contains(['/', '<', '>', ':', '"', '|', '?', '*']) {
            return None;
        }
        let stem = part.split('.').next().unwrap_or(part).trim_end();
        let upper = stem.to_ascii_uppercase();
        let reserved = matches!(
            upper.as_str(),
            "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
        ) || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && upper.as_bytes()[3].is_ascii_digit());
        if reserved {
            return None;
        }
    }
    Some(PathBuf::from(plain))
}

/// Where the data of `path` lives: its last component followed through
/// symbolic links (chains, relative targets) to a name that is not a link. The
/// result need not exist (a link to a missing file leads to where it would
/// be). Folders along the way are left to the OS to resolve.
pub fn follow_links(path: &Path) -> io::Result<PathBuf> {
    follow_links_seen(path).map(|(target, _)| target)
}

/// `follow_links`, and what its one `lstat` of the result found there
/// (`None`: nothing): a writer needs both, and a second look would cost a
/// syscall per write.
pub fn follow_links_seen(path: &Path) -> io::Result<(PathBuf, Option<std::fs::Metadata>)> {
    let mut current = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&current)?;
                // A relative target is relative to the link's folder (an absolute one replaces it).
                current = match current.parent() {
                    Some(folder) => folder.join(target),
                    None => target,
                };
            }
            Ok(meta) => return Ok((current, Some(meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((current, None)),
            Err(e) => return Err(e),
        }
    }
    Err(too_many_links())
}

fn too_many_links() -> io::Error {
    #[cfg(unix)]
    {
        io::Error::from_raw_os_error(libc::ELOOP)
    }
    #[cfg(windows)]
    {
        io::Error::from_raw_os_error(1921) // ERROR_CANT_RESOLVE_FILENAME
    }
}

/// What a file that is not a regular file is, for messages ("a FIFO").
pub fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        return "a folder";
    }
    if kind.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// Refuses anything at `path` that is not a regular file (a missing file is
/// fine): a FIFO would block a reader forever, a device never ends, and a
/// rename would replace either with a regular file. The message says what it
/// is and contains "not a regular file" (document.js codes it `ENOTFILE`).
pub fn refuse_special(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => refuse_special_seen(path, &meta),
        Err(_) => Ok(()),
    }
}

/// `refuse_special` for what an `lstat` of `path` already found.
pub fn refuse_special_seen(path: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    if meta.is_file() {
        return Ok(());
    }
    let kind = kind_of(meta);
    let what = if kind == "not a regular file" {
        "something that is not a regular file".to_string()
    } else {
        format!("{kind}, not a regular file")
    };
    Err(io::Error::new(
        if meta.is_dir() {
            io::ErrorKind::IsADirectory
        } else {
            io::ErrorKind::InvalidInput
        },
        format!("{} is {what}; it was left as it is", path.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_fit_are_kept_as_they_always_were() {
        let name = OsStr::new("roles.json");
        assert_eq!(fit(".", name, ".lock"), ".roles.json.lock");
        let longest = "r".repeat(NAME_MAX - 6);
        assert_eq!(
            fit(".", OsStr::new(&longest), ".lock"),
            OsString::from(format!(".{longest}.lock"))
        );
    }

    #[test]
    fn names_that_would_not_fit_are_built_on_a_deterministic_stem() {
        let long = "r".repeat(NAME_MAX - 5);
        let built = fit(".", OsStr::new(&long), ".lock");
        assert!(units(&built) <= NAME_MAX);
        assert_eq!(
            built,
            fit(".", OsStr::new(&long), ".lock"),
            "the same in every call"
        );
        let text = built.to_str().unwrap();
        assert!(text.starts_with(&format!(".{}~", "r".repeat(STEM_KEEP))));
        assert!(text.ends_with(".lock"));
        // Names sharing their first bytes still differ.
        let other = format!("{}s", "r".repeat(NAME_MAX - 6));
        assert_ne!(built, fit(".", OsStr::new(&other), ".lock"));
        // The stem does not depend on the tail.
        let temp = fit(".", OsStr::new(&long), ".12345.abc~def.tmp");
        let mut stemmed = OsString::from(".");
        stemmed.push(stem(OsStr::new(&long)));
        assert!(temp
            .to_str()
            .unwrap()
            .starts_with(stemmed.to_str().unwrap()));
    }

    #[cfg(windows)]
    #[test]
    fn verbatim_paths_come_back_plain_only_where_that_names_the_same_file() {
        let plain =
            |text: &str| plain_form(Path::new(text)).map(|p| p.to_string_lossy().into_owned());
        assert_eq!(
            plain(r"\\?\C:\Users\a\roles.json").as_deref(),
            Some(r"C:\Users\a\roles.json")
        );
        assert_eq!(
            plain(r"\\?\UNC\server\share\roles.json").as_deref(),
            Some(r"\\server\share\roles.json")
        );
        for kept in [
            r"\\?\C:\a\CON",
            r"\\?\C:\a\nul.json",
            r"\\?\C:\a\dot.",
            r"\\?\C:\a\space ",
            r"\\?\Volume{x}\a",
        ] {
            assert_eq!(plain(kept), None, "{kept}");
        }
        assert_eq!(plain(&format!(r"\\?\C:\{}", "a".repeat(300))), None);
        let dir = tempfile::tempdir().unwrap();
        let resolved = canonical(dir.path()).unwrap();
        assert!(
            !resolved.to_string_lossy().starts_with(r"\\?\"),
            "{}",
            resolved.display()
        );
        assert_eq!(
            std::fs::canonicalize(&resolved).unwrap(),
            std::fs::canonicalize(dir.path()).unwrap()
        );
    }

    #[test]
    fn stems_never_split_a_character_and_match_document_js() {
        // 3-byte characters: 96 is a multiple of 3, 95 is not.
        let name = "é".repeat(130); // 260 bytes
        let stem = stem(OsStr::new(&name));
        let text = stem.to_str().unwrap();
        let (prefix, hash) = text.rsplit_once('~').unwrap();
        assert!(units(OsStr::new(prefix)) <= STEM_KEEP && name.starts_with(prefix));
        assert_eq!(hash.len(), 16);
        // FNV-1a 64 of "roles.json", as document.js computes it.
        assert_eq!(fnv1a(b"roles.json"), 0x66c3_11f0_4a95_d962);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed_through_chains_relative_targets_and_to_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("data").join("roles.json");
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(&real, "{}").unwrap();
        let first = dir.path().join("first.json");
        let second = dir.path().join("second.json");
        std::os::unix::fs::symlink("data/roles.json", &second).unwrap();
        std::os::unix::fs::symlink(&second, &first).unwrap();
        assert_eq!(
            follow_links(&first).unwrap(),
            dir.path().join("data/roles.json")
        );
        let plain = dir.path().join("plain.json");
        assert_eq!(follow_links(&plain).unwrap(), plain);
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink("data/new.json", &dangling).unwrap();
        assert_eq!(
            follow_links(&dangling).unwrap(),
            dir.path().join("data/new.json")
        );
        let looped = dir.path().join("loop.json");
        std::os::unix::fs::symlink("loop.json", &looped).unwrap();
        assert_eq!(
            follow_links(&looped).unwrap_err().raw_os_error(),
            Some(libc::ELOOP)
        );
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_refused_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        assert!(refuse_special(&dir.path().join("missing")).is_ok());
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        assert!(refuse_special(&file).is_ok());
        let folder = refuse_special(dir.path()).unwrap_err();
        assert!(folder.to_string().contains("a folder, not a regular file"));
        let null = refuse_special(Path::new("/dev/null")).unwrap_err();
        assert!(null
            .to_string()
            .contains("a character device, not a regular file"));
    }
}
