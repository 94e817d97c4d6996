//! linux.sysctl: the sysctls of the container's own namespaces take effect inside it and
//! nowhere else; any other key (a host-wide sysctl, a net one without a network namespace of
//! its own, a path out of /proc/sys) is refused with one line and exit 125.

use serde_json::{json, Value};

use crate::common::{self, Bundle, Mode};

fn id(test: &str, mode: Mode) -> String {
    common::test_id("sysctl", test, mode)
}

fn host(key: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{}", key.replace('.', "/"))).unwrap()
}

fn drop_namespace(c: &mut Value, typ: &str) {
    let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != typ);
}

const PING: &str = "net.ipv4.ping_group_range";
const PORT: &str = "net.ipv4.ip_unprivileged_port_start";
const SHMMAX: &str = "kernel.shmmax";

#[test]
fn namespaced_sysctls_take_effect_inside_and_leave_the_host_alone() {
    let keys = [PING, PORT, SHMMAX];
    let before: Vec<String> = keys.iter().map(|k| host(k)).collect();
    for mode in common::modes() {
        let bundle = Bundle::new(mode)
            .args(&[
                "/bin/sh",
                "-c",
                "cat /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmax",
            ])
            .edit(|c| {
                c["linux"]["sysctl"] = json!({
                    PING: "0 0",
                    // runc's other separator
                    "net/ipv4/ip_unprivileged_port_start": "0",
                    SHMMAX: "123456789",
                })
            });
        let out = bundle.run(&id("applied", mode));
        let got: Vec<String> = out
            .stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert!(
            out.status == 0 && got == ["0 0", "0", "123456789"],
            "{mode:?}: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
    let after: Vec<String> = keys.iter().map(|k| host(k)).collect();
    assert_eq!(before, after, "the host's sysctls changed");
}

#[test]
fn sysctls_outside_the_containers_namespaces_or_failing_are_refused() {
    type Case = (&'static str, &'static str, fn(&mut Value));
    let cases: [Case; 6] = [
        ("net-without-netns", PORT, |c| drop_namespace(c, "network")),
        ("host-wide", "kernel.panic", |_| {}),
        ("dotdot", "../x", |_| {}),
        ("empty-part", "net.ipv4..x", |_| {}),
        ("leading-slash", "/net/ipv4/ip_forward", |_| {}),
        // Passes validation; the kernel's refusal at the write is named.
        ("no-such-file", "net.ipv4.no_such_sysctl", |_| {}),
    ];
    let before = [host(PORT), host("kernel.panic")];
    for mode in common::modes() {
        for (name, key, edit) in cases {
            let bundle = Bundle::new(mode)
                .args(&["/bin/sh", "-c", "echo ran"])
                .edit(|c| {
                    c["linux"]["sysctl"] = json!({ key: "0" });
                    edit(c);
                });
            let out = bundle.run(&id(name, mode));
            let named = format!("linux.sysctl[{key:?}]");
            assert!(
                out.status == 125
                    && out.stdout.is_empty()
                    && out.stderr.lines().count() == 1
                    && out.stderr.contains(&named),
                "{mode:?} {name}: want exit 125 and one line naming {named}: {out:?}"
            );
            common::assert_nothing_left(mode, bundle.state_dir());
        }
    }
    assert_eq!(before, [host(PORT), host("kernel.panic")]);
}

/// kernel.domainname belongs to the uts namespace, but the kernel hands its file to no
/// namespace owner: an unprivileged caller gets one line naming it, root gets the value.
#[test]
fn domainname_is_set_as_root_and_named_when_the_kernel_refuses_it() {
    let before = host("kernel.domainname");
    for mode in common::modes() {
        let bundle = Bundle::new(mode)
            .args(&["/bin/cat", "/proc/sys/kernel/domainname"])
            .edit(|c| c["linux"]["sysctl"] = json!({ "kernel.domainname": "sysctl.test" }));
        let out = bundle.run(&id("domainname", mode));
        let ok = if mode.is_rootless() {
            out.status == 125
                && out.stderr.lines().count() == 1
                && out.stderr.contains("linux.sysctl[\"kernel.domainname\"]")
        } else {
            out.status == 0 && out.stdout == "sysctl.test\n"
        };
        assert!(ok, "{mode:?}: {out:?}");
        common::assert_nothing_left(mode, bundle.state_dir());
    }
    assert_eq!(before, host("kernel.domainname"));
}
