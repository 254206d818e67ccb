//! Tests of the lock configuration (`config.rs`).

use std::time::Duration;

use super::*;

#[test]
fn timeouts_stretch_on_network_shares_only() {
    let second = Some(Duration::from_secs(1));
    let nfs = FsKind::Network("nfs".into());
    assert_eq!(network_stretch(&FsKind::Local, second, 3.0), second);
    assert_eq!(
        network_stretch(&nfs, second, 3.0),
        Some(Duration::from_secs(3))
    );
    assert_eq!(
        network_stretch(&nfs, second, 0.5),
        second,
        "a factor below 1 never shortens"
    );
    assert_eq!(network_stretch(&nfs, None, 3.0), None);
    assert_eq!(network_stretch(&nfs, Some(Duration::MAX), 3.0), None);
}
