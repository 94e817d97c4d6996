//! docs/spec-fields.md is the field table, rendered: it cannot drift from what nsboot does.
//! `NSBOOT_WRITE_DOCS=1 cargo test --lib spec_fields_doc` rewrites it from the table.

use super::fields::{self, Rule};

const HEAD: &str = "# config.json, field by field

Every field of the OCI runtime spec (config.json), and what nsboot does with it. This file is
rendered from the table in `src/spec/fields.rs`, which the contract check (`src/spec/scan.rs`),
value checks (`src/spec/contract.rs`, `src/spec/validate.rs`) and `nsboot features` read; a unit
test fails when they differ (`NSBOOT_WRITE_DOCS=1 cargo test --lib spec_fields_doc` rewrites it).

- **applied**: nsboot applies the field exactly, in the code named.
- **checked**: applied; values nsboot cannot apply as the spec means them are refused (the
  note says which).
- **refused**: a value other than empty (null, \"\", [], {}) is refused with one line naming
  the JSON path and the fix, exit 125. Empty values are what engines write for \"not set\".
- **cgroup**: written to the container's cgroup by `src/cgroup/` (cgroup v2, or v1 and the
  hybrid layout, detected at run time; runc's conversions on v2); a value the host's hierarchy
  cannot take is refused with one line naming the field, exit 125. An unprivileged caller
  uses a cgroup v2 subtree delegated to it; without one (and on v1) it gets one warning line
  and the container runs without the limits, as with runc and crun. `0` and `false` count as
  unset, as in runc (`pids.limit: 0` is podman's `--pids-limit 0`); a spec with no cgroupsPath
  and no such setting gets no cgroup.

Namespaces: a type listed without a path is a new namespace (time: refused, none is made); with
a `path` it is joined, exactly that one (its type checked; a dead path or the wrong type
refused; a pid namespace joined by path holds the application, and nsboot's supervisor beside
it; a mount namespace joined by path gets the container's root attached over its own and
pivoted into, as runc does, which moves the processes already at its root there too (so the
caller's own mount namespace is refused); it takes
the user namespace that owns it listed by path, or none listed: then, as real root only, the
container runs in the caller's user namespace, as with runc); network, ipc,
uts, cgroup and pid not listed are the runtime's (inherited: with the runtime's pid namespace the
application's /proc is the runtime's, bound; a foreground run kills what the application leaves
running when it ends, `delete` what a created one started); mount not listed is refused;
a user namespace not listed is added (nsboot runs in one, DESIGN.md; not beside a mount
namespace joined by path, which only its owner may enter); one joined by path
brings its maps (the spec's must be absent or agree). Strings anywhere
in config.json with a NUL byte are refused. Properties the runtime spec does not define are
ignored, as its Extensibility section requires.

| field | nsboot | where, or the fix |
|---|---|---|
";

fn render() -> String {
    let mut out = String::from(HEAD);
    let (mut applied, mut refused, mut cgroup) = (0, 0, 0);
    fields::walk(|path, f| {
        let (class, note) = match f.rule {
            Rule::Applied(at) => {
                applied += 1;
                ("applied", at.to_string())
            }
            Rule::Checked(at) => {
                applied += 1;
                ("checked", at.to_string())
            }
            Rule::Refused(fix) => {
                refused += 1;
                ("**refused**", fix.to_string())
            }
            Rule::RefusedBut(value, fix) => {
                refused += 1;
                ("**refused**", format!("but {value:?} is accepted; {fix}"))
            }
            Rule::Cgroup => {
                cgroup += 1;
                (
                    "cgroup",
                    "src/cgroup/; rootless without delegation: one warning".to_string(),
                )
            }
        };
        out.push_str(&format!("| `{path}` | {class} | {note} |\n"));
    });
    out.push_str(&format!(
        "\n{applied} fields applied (or checked), {refused} refused, {cgroup} cgroup settings.\n"
    ));
    out
}

#[test]
fn spec_fields_doc_is_the_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/spec-fields.md");
    let want = render();
    if std::env::var_os("NSBOOT_WRITE_DOCS").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "{path} differs from the table in src/spec/fields.rs: NSBOOT_WRITE_DOCS=1 cargo test --lib spec_fields_doc"
    );
}

#[test]
fn spec_fields_doc_names_files_that_exist() {
    let doc = render();
    let root = env!("CARGO_MANIFEST_DIR");
    let missing: Vec<&str> = doc
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '|')
        .filter(|w| w.starts_with("src/") && w.ends_with(".rs"))
        .filter(|w| !std::path::Path::new(root).join(w).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "the field table names files that do not exist: {missing:?}"
    );
}

#[test]
fn rules_are_found_through_arrays() {
    assert!(matches!(
        fields::rule("linux.namespaces.path"),
        Some(Rule::Applied(_))
    ));
    assert!(matches!(
        fields::rule("mounts.uidMappings"),
        Some(Rule::Refused(_))
    ));
    assert_eq!(fields::rule("linux.cgroupsPath"), Some(Rule::Cgroup));
    assert!(fields::rule("linux.nosuch").is_none());
}

fn scan(json: serde_json::Value) -> Result<Vec<String>, (String, String)> {
    let bytes = serde_json::to_vec(&json).unwrap();
    super::scan::scan(&bytes, &fields::SPEC_SHAPE, "")
        .map(|f| f.cgroup)
        .map_err(|r| (r.json_path, r.msg))
}

#[test]
fn cgroup_settings_are_noted_and_zero_is_unset() {
    use serde_json::json;
    let none = json!({"linux": {"resources": {"pids": {"limit": 0}, "memory": {}, "devices": [{"allow": false}]}}});
    assert_eq!(scan(none), Ok(vec![]));
    // (json! sorts keys: this is their document order.)
    let some = json!({"linux": {"cgroupsPath": "/x", "resources": {"unified": {"memory.max": ""}, "cpu": {"shares": 2}}}});
    assert_eq!(
        scan(some),
        Ok(vec![
            "linux.cgroupsPath".into(),
            "linux.resources.cpu".into(),
            "linux.resources.unified".into()
        ])
    );
}

#[test]
fn refusals_name_the_path_through_arrays_and_maps() {
    use serde_json::json;
    let e = scan(json!({"mounts": [{}, {"gidMappings": [{"size": 1}]}]})).unwrap_err();
    assert_eq!(e.0, "mounts[1].gidMappings");
    let e = scan(json!({"annotations": {"a": "x", "b": "y\u{0}"}})).unwrap_err();
    assert_eq!(e.0, "annotations.b");
    assert!(e.1.contains("NUL"), "{}", e.1);
    // Empty values are what engines write for "not set"; unknown properties are ignored.
    let ok = json!({"process": {"apparmorProfile": "unconfined", "scheduler": {}}, "linux": {"sysctl": {}, "x-vendor": {"sysctl": {"a": "b"}}}});
    assert_eq!(scan(ok), Ok(vec![]));
}

/// The options validation lets through on a bind are the ones the mount code turns into
/// flags: none of them may end up in the data string a bind drops.
#[test]
fn every_bind_option_allowed_is_a_flag_the_mount_code_sets() {
    for o in fields::MOUNT_OPTIONS {
        let parsed = crate::rootfs::mounts::MountOptions::parse(&[o]);
        assert!(parsed.data.is_empty(), "{o} would be dropped on a bind");
    }
}
