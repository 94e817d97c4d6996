use super::*;

fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
    serde_json::from_str(json).unwrap()
}

fn policy(json: &str) -> Policy {
    Policy::from_rules(&rules(json)).unwrap()
}

#[test]
fn no_rules_deny_all_but_the_standard_nodes() {
    let p = policy("[]");
    assert!(!p.default_allow);
    assert!(p.allows(Kind::Char, 1, 3, READ | WRITE));
    assert!(p.allows(Kind::Char, 136, 7, READ | WRITE));
    assert!(!p.allows(Kind::Char, 10, 229, READ));
    assert!(!p.allows(Kind::Block, 8, 0, READ));
    // runc's "c *:* m" and "b *:* m".
    assert!(p.allows(Kind::Block, 8, 0, MKNOD));
}

#[test]
fn later_rules_override_earlier_ones() {
    let p = policy(
        r#"[{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
            {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "w"}]"#,
    );
    assert!(p.allows(Kind::Char, 10, 229, READ));
    assert!(!p.allows(Kind::Char, 10, 229, WRITE));
    assert!(!p.allows(Kind::Char, 10, 229, READ | WRITE));
    // A wider deny after a narrower allow takes the narrower one's bits too.
    let p = policy(
        r#"[{"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
            {"allow": false, "type": "c", "major": 10, "access": "w"}]"#,
    );
    assert!(p.allows(Kind::Char, 10, 229, READ) && !p.allows(Kind::Char, 10, 229, WRITE));
}

#[test]
fn standard_nodes_come_after_the_spec_rules_as_in_runc() {
    let p = policy(r#"[{"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]"#);
    assert!(p.allows(Kind::Char, 1, 3, WRITE));
}

#[test]
fn allow_all_then_deny_is_a_default_allow_list() {
    let p = policy(
        r#"[{"allow": true, "access": "rwm"},
            {"allow": false, "type": "b", "major": 8, "access": "rwm"}]"#,
    );
    assert!(p.default_allow);
    assert!(!p.allows(Kind::Block, 8, 1, READ));
    assert!(p.allows(Kind::Block, 9, 1, READ | WRITE));
}

#[test]
fn type_a_with_numbers_or_fewer_accesses_is_c_and_b() {
    let p = policy(r#"[{"allow": true, "major": 10, "access": "r"}]"#);
    assert!(!p.default_allow);
    assert!(p.allows(Kind::Char, 10, 1, READ) && p.allows(Kind::Block, 10, 1, READ));
    assert!(!p.allows(Kind::Char, 10, 1, WRITE));
    assert!(!p.allows(Kind::Char, 11, 1, READ));
}

#[test]
fn a_hole_in_a_wider_rule_is_refused() {
    let r = rules(
        r#"[{"allow": true, "type": "c", "major": 10, "access": "rw"},
            {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "w"}]"#,
    );
    let e = Policy::from_rules(&r).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "linux.resources.devices[1]: deny c 10:229 w cuts into the wider rule c 10:* rw"
        ),
        "{e}"
    );
    let fifo = rules(r#"[{"allow": true, "type": "p", "access": "rw"}]"#);
    assert!(Policy::from_rules(&fifo).is_err());
    let bad = rules(r#"[{"allow": true, "type": "c", "access": "rx"}]"#);
    assert!(Policy::from_rules(&bad).is_err());
}

#[test]
fn exceptions_are_written_as_the_kernel_lists_them() {
    let p = policy(r#"[{"allow": true, "type": "b", "major": 8, "access": "rm"}]"#);
    assert_eq!(p.exceptions[0].line(), "b 8:* rm");
    assert_eq!(p.exceptions[1].line(), "c *:* m");
}
