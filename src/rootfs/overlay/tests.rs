//! Tests of the overlay's pure parts: versions, fixes, the annotation, mountinfo.

use std::collections::HashMap;

use super::*;

#[test]
fn versions_parse_from_distribution_releases() {
    assert_eq!(version("6.1.0-18-amd64"), Some((6, 1)));
    assert_eq!(version("5.11.0"), Some((5, 11)));
    assert_eq!(version("4.19.282+"), Some((4, 19)));
    assert_eq!(version("weird"), None);
}

#[test]
fn fix_names_the_kernel_and_5_11() {
    let old = fix(Errno(libc::EPERM), "5.10.0-28-amd64");
    assert_eq!(
        old,
        "--overlay needs Linux 5.11 or later (overlayfs in a user namespace), this kernel is 5.10.0-28-amd64: run without --overlay"
    );
    let new = fix(Errno(libc::EINVAL), "6.1.0");
    assert!(
        new.contains("5.11") && new.contains("this kernel is 6.1.0"),
        "{new}"
    );
    assert!(new.ends_with("run without --overlay"), "{new}");
    assert!(!new.contains('\n'));
}

#[test]
fn wanted_only_with_the_annotation_set_to_true() {
    let mut spec = Spec::default();
    assert!(!wanted(&spec));
    let a = |v: &str| HashMap::from([(ANNOTATION.to_string(), v.to_string())]);
    spec.set_annotations(Some(a("false")));
    assert!(!wanted(&spec));
    spec.set_annotations(Some(a("true")));
    assert!(wanted(&spec));
}

#[test]
fn mount_points_come_unescaped_from_mountinfo() {
    let info = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
                30 22 0:5 / /newroot/my\\040dir rw - tmpfs tmpfs rw\n";
    let points = parse_mount_points(info);
    assert_eq!(points, [Path::new("/"), Path::new("/newroot/my dir")]);
    assert_eq!(unescape("a\\134b\\0"), b"a\\b\\0");
}

#[test]
fn apply_without_the_annotation_touches_nothing() {
    apply(&Spec::default(), Path::new("/nonexistent")).unwrap();
}
