//! Tests of the atomic replace: no temp file left, permissions and links
//! kept, no reader sees a partial file, and only dead writers' temp files
//! are cleaned up.

use super::*;
use crate::test_support::{dead_pid, names_in, scratch, scratch_file};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn replaces_creates_and_leaves_no_temp_file() {
    let (dir, target) = scratch("roles.json");
    replace(&target, b"[1]", Durability::Fsync).unwrap();
    replace(&target, b"[1,2]", Durability::None).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"[1,2]");
    assert_eq!(names_in(dir.path()), ["roles.json"]);
}

#[cfg(unix)]
#[test]
fn the_targets_permissions_are_kept() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, target) = scratch_file("roles.json", "{}");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    replace(&target, b"{\"a\":1}", Durability::None).unwrap();
    assert_eq!(crate::test_support::permission_bits(&target), 0o600);
}

#[test]
fn a_failed_write_leaves_the_old_version_and_no_temp_file() {
    let (dir, target) = scratch_file("roles.json", "old");
    // Renaming onto a directory fails after the temp file was written.
    let blocked = dir.path().join("sub");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("x"), "").unwrap();
    assert!(replace(&blocked, b"new", Durability::Fsync).is_err());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
    assert_eq!(temps_in(dir.path()), Vec::<String>::new());
}

#[test]
fn readers_never_see_a_partial_file() {
    let (_dir, target) = scratch("roles.json");
    let target = Arc::new(target);
    let big = |n: u8| vec![b'a' + n % 26; 256 * 1024];
    replace(&target, &big(0), Durability::None).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (target, done) = (Arc::clone(&target), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(Ordering::SeqCst) {
                let bytes = std::fs::read(&*target).unwrap();
                assert_eq!(bytes.len(), 256 * 1024, "a torn or empty file was seen");
                assert!(
                    bytes.iter().all(|b| *b == bytes[0]),
                    "a mix of two versions was seen"
                );
                reads += 1;
            }
            reads
        })
    };
    for n in 1..60 {
        replace(&target, &big(n), Durability::None).unwrap();
    }
    done.store(true, Ordering::SeqCst);
    assert!(reader.join().unwrap() > 0);
}

#[cfg(unix)]
#[test]
fn temp_files_of_dead_writers_are_removed_and_live_ones_kept() {
    let (dir, target) = scratch("roles.json");
    let temp = |pid: u32, place: &str| dir.path().join(format!(".roles.json.{pid}.{place}.tmp"));
    let stale = temp(dead_pid(), "x-1");
    let live = temp(std::process::id(), "x-2");
    let unrelated = dir.path().join(".other.json.1.x.tmp");
    for path in [&stale, &live, &unrelated] {
        std::fs::write(path, "partial").unwrap();
    }
    assert_eq!(remove_stale_temps(&target).unwrap(), 1);
    assert!(!stale.exists() && live.exists() && unrelated.exists());
}

#[cfg(unix)]
#[test]
fn temp_files_of_another_host_boot_or_pid_namespace_are_not_judged_by_their_pid() {
    let (dir, target) = scratch("roles.json");
    let temp = |pid: u32, place: &str| dir.path().join(format!(".roles.json.{pid}.{place}.tmp"));
    let dead = dead_pid();
    // Named the way `replace` names them: with our place.
    let ours_dead = temp(dead, &process::current().file_token());
    let ours_live = temp_path(&target).unwrap();
    // A writer elsewhere (another PID namespace here, say) whose pid is dead here.
    let foreign = temp(dead, "x-1~000000000000");
    let foreign_ancient = temp(dead, "x-2~000000000000");
    for path in [&ours_dead, &ours_live, &foreign, &foreign_ancient] {
        std::fs::write(path, "partial").unwrap();
    }
    crate::test_support::age_by(&foreign_ancient, Duration::from_secs(25 * 3600));
    assert_eq!(remove_stale_temps(&target).unwrap(), 2);
    assert!(!ours_dead.exists() && !foreign_ancient.exists());
    assert!(ours_live.exists(), "our own temp file is being written");
    assert!(foreign.exists(), "a pid of elsewhere proves nothing here");
}

#[cfg(unix)]
fn is_link(path: &Path) -> bool {
    path.symlink_metadata().unwrap().file_type().is_symlink()
}

fn temps_in(dir: &Path) -> Vec<String> {
    let mut names = names_in(dir);
    names.retain(|name| name.ends_with(".tmp"));
    names
}

#[cfg(unix)]
#[test]
fn a_link_is_written_through_where_it_leads_now_and_stays_a_link() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let real = data.join("roles.json");
    std::fs::write(&real, "old").unwrap();
    // A chain: an absolute link to a relative one.
    let middle = dir.path().join("middle.json");
    symlink("data/roles.json", &middle).unwrap();
    let link = dir.path().join("roles.json");
    symlink(&middle, &link).unwrap();
    replace(&link, b"new", Durability::Fsync).unwrap();
    assert!(is_link(&link) && is_link(&middle));
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
    assert!(temps_in(dir.path()).is_empty() && temps_in(&data).is_empty());
    // Pointed elsewhere between writes: the next write goes where it leads now.
    let other = data.join("other.json");
    std::fs::write(&other, "other").unwrap();
    std::fs::remove_file(&link).unwrap();
    symlink("data/other.json", &link).unwrap();
    replace(&link, b"third", Durability::None).unwrap();
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "third");
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
    assert!(is_link(&link));
    // A link to a missing file: the file is created where the link leads.
    let dangling = dir.path().join("new.json");
    symlink("data/created.json", &dangling).unwrap();
    replace(&dangling, b"{}", Durability::Fsync).unwrap();
    assert!(is_link(&dangling));
    assert_eq!(
        std::fs::read_to_string(data.join("created.json")).unwrap(),
        "{}"
    );
}

#[cfg(unix)]
#[test]
fn fifos_devices_and_folders_are_refused_and_left_as_they_are() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{symlink, FileTypeExt};
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.json");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let error = replace(&fifo, b"{}", Durability::Fsync).unwrap_err();
    assert!(error
        .to_string()
        .contains("a FIFO (named pipe), not a regular file"));
    assert!(fifo.symlink_metadata().unwrap().file_type().is_fifo());
    let device = dir.path().join("zero.json");
    symlink("/dev/null", &device).unwrap();
    let error = replace(&device, b"{}", Durability::Fsync).unwrap_err();
    assert!(error
        .to_string()
        .contains("a character device, not a regular file"));
    assert!(is_link(&device));
    assert!(Path::new("/dev/null")
        .metadata()
        .unwrap()
        .file_type()
        .is_char_device());
    let folder = dir.path().join("folder.json");
    std::fs::create_dir(&folder).unwrap();
    let error = replace(&folder, b"{}", Durability::Fsync).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::IsADirectory);
    assert!(temps_in(dir.path()).is_empty());
}

#[test]
fn names_up_to_the_limit_are_written_and_their_temps_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let names = (200..=255).map(|n| "r".repeat(n)).chain([
        "é".repeat(127),
        "日".repeat(85),
        format!("{}.json", "d".repeat(250)),
    ]);
    for name in names {
        let target = dir.path().join(&name);
        replace(&target, b"[1]", Durability::Fsync).unwrap();
        replace(&target, b"[1,2]", Durability::None).unwrap();
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"[1,2]",
            "{} bytes",
            name.len()
        );
        assert!(temps_in(dir.path()).is_empty(), "{} bytes", name.len());
        // A crashed writer's temp file (named as ours would be, with a dead pid)
        // is recognised and removed, beside the file and in its backups folder.
        let dead = dead_pid();
        let token = process::current().file_token();
        let tail = format!(".{dead}.{token}.tmp");
        let stale = dir.path().join(paths::fit(".", OsStr::new(&name), &tail));
        let backups = dir
            .path()
            .join(paths::fit(".", OsStr::new(&name), ".backups"));
        std::fs::create_dir(&backups).unwrap();
        let stale_backup = backups.join(format!(".x.json{tail}"));
        let live = temp_path(&target).unwrap();
        for path in [&stale, &stale_backup, &live] {
            assert!(paths::units(path.file_name().unwrap()) <= paths::NAME_MAX);
            std::fs::write(path, "partial").unwrap();
        }
        #[cfg(unix)]
        {
            assert_eq!(
                remove_stale_temps(&target).unwrap(),
                2,
                "{} bytes",
                name.len()
            );
            assert!(!stale.exists() && !stale_backup.exists() && live.exists());
        }
        std::fs::remove_file(&live).unwrap();
        let _ = std::fs::remove_file(&stale);
        std::fs::remove_dir_all(&backups).unwrap();
        std::fs::remove_file(&target).unwrap();
    }
}
