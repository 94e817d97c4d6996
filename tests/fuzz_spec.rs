//! A fuzz harness (proptest) over what nsboot parses from untrusted hands: config.json
//! (arbitrary bytes, JSON-ish text, and mutations of valid configs) through `spec::load`,
//! `spec::parse` and `spec::validate`, the seccomp compiler on whatever validates, and the
//! CLI's `--pass-fd M:N` and container id parsers. None may panic; every error is one line.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

use nsboot::cli::boot::parse_fd_mapping;
use nsboot::spec::{self, validate_id};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // A failing case is reported by the test; no regression file in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn assert_one_line(e: &dyn std::fmt::Display, input: &dyn std::fmt::Debug) {
    let msg = e.to_string();
    assert!(
        !msg.is_empty() && !msg.contains('\n'),
        "error is not one line: {msg:?} (input {input:?})"
    );
}

/// `spec::load` on a bundle whose config.json is `bytes`; when it validates, the seccomp
/// profile must also compile (or fail with one line).
fn load_bytes(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), bytes).unwrap();
    match spec::load(dir.path()) {
        Err(e) => assert_one_line(&e, &String::from_utf8_lossy(bytes)),
        Ok(s) => {
            if let Some(sc) = s.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
                if let Err(e) = nsboot::process::seccomp::build(sc) {
                    assert_one_line(&e, &String::from_utf8_lossy(bytes));
                }
            }
        }
    }
    // parse + validate directly, as `boot` and `create` use them.
    if let Ok(s) = spec::parse(Path::new("config.json"), bytes) {
        if let Err(e) = spec::validate(&s) {
            assert_one_line(&e, &String::from_utf8_lossy(bytes));
        }
    }
}

/// A valid config: `nsboot spec --rootless`'s, with its default seccomp profile.
fn valid_config() -> Value {
    let text = spec::to_json(&spec::generate(true, 1000, 1000));
    serde_json::from_str(&text).unwrap()
}

/// Strings that mean something to nsboot, and arbitrary ones.
fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            ".",
            "..",
            "/",
            "/../../..",
            "../x",
            "rootfs",
            "/proc",
            "proc",
            "tmpfs",
            "bind",
            "rbind",
            "ro",
            "user",
            "pid",
            "mount",
            "CAP_SYS_ADMIN",
            "CAP_BOGUS",
            "RLIMIT_NOFILE",
            "RLIMIT_BOGUS",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_NOTIFY",
            "SCMP_ACT_BOGUS",
            "SCMP_CMP_MASKED_EQ",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_BOGUS",
            "mkdir",
            "no_such_syscall",
            "1.0.2",
            "2.0",
            "a\u{0}b",
            "K=V",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,24}",
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![0u64, 1, 5, 6, 255, 65535, 65536, 1 << 32, u64::MAX])
            .prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        json_string().prop_map(Value::from),
    ]
}

/// Keys of the OCI spec, so that mutations reach deep into the decoder and validator.
const KEYS: &[&str] = &[
    "ociVersion",
    "process",
    "root",
    "mounts",
    "linux",
    "hostname",
    "args",
    "env",
    "cwd",
    "user",
    "uid",
    "gid",
    "umask",
    "additionalGids",
    "capabilities",
    "bounding",
    "effective",
    "permitted",
    "inheritable",
    "ambient",
    "rlimits",
    "type",
    "soft",
    "hard",
    "noNewPrivileges",
    "oomScoreAdj",
    "path",
    "readonly",
    "destination",
    "source",
    "options",
    "namespaces",
    "uidMappings",
    "gidMappings",
    "containerID",
    "hostID",
    "size",
    "maskedPaths",
    "readonlyPaths",
    "seccomp",
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "flags",
    "syscalls",
    "names",
    "action",
    "errnoRet",
    "index",
    "op",
    "value",
    "valueTwo",
    "listenerPath",
    "devices",
    "sysctl",
    "rootfsPropagation",
];

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, Value),
    Remove(Index),
    Insert(Index, &'static str, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        any::<Index>().prop_map(Mutation::Remove),
        (any::<Index>(), prop::sample::select(KEYS), json_value())
            .prop_map(|(i, k, v)| Mutation::Insert(i, k, v)),
    ]
}

/// JSON pointers of every node of `v` but the root.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, c)| (k.replace('~', "~0").replace('/', "~1"), c))
            .collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), c))
            .collect(),
        _ => return,
    };
    for (k, c) in children {
        let p = format!("{at}/{k}");
        out.push(p.clone());
        pointers(c, p, out);
    }
}

fn apply(config: &mut Value, m: &Mutation) {
    let mut ptrs = Vec::new();
    pointers(config, String::new(), &mut ptrs);
    if ptrs.is_empty() {
        return;
    }
    let pick = |i: &Index| ptrs[i.index(ptrs.len())].clone();
    match m {
        Mutation::Replace(i, v) => {
            if let Some(node) = config.pointer_mut(&pick(i)) {
                *node = v.clone();
            }
        }
        Mutation::Remove(i) => {
            let p = pick(i);
            let (parent, last) = p.rsplit_once('/').unwrap();
            match config.pointer_mut(parent) {
                Some(Value::Object(o)) => {
                    o.remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(a)) => {
                    let i: usize = last.parse().unwrap();
                    a.remove(i);
                }
                _ => {}
            }
        }
        Mutation::Insert(i, k, v) => match config.pointer_mut(&pick(i)) {
            Some(Value::Object(o)) => {
                o.insert(k.to_string(), v.clone());
            }
            Some(Value::Array(a)) => a.push(v.clone()),
            _ => {}
        },
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn load_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        load_bytes(&bytes);
    }

    #[test]
    fn load_never_panics_on_json_ish_text(text in "[\\[\\]{}:,\"0-9a-z \\\\.eE+-]{0,200}") {
        load_bytes(text.as_bytes());
    }

    #[test]
    fn load_never_panics_on_arbitrary_json(v in json_value()) {
        load_bytes(&serde_json::to_vec(&v).unwrap());
    }

    #[test]
    fn load_never_panics_on_mutated_valid_configs(
        muts in prop::collection::vec(mutation(), 1..6),
        cut in prop::option::weighted(0.2, any::<Index>()),
        keep_seccomp in any::<bool>(),
    ) {
        let mut config = valid_config();
        if !keep_seccomp {
            // The profile is most of the nodes: without it, mutations reach the rest.
            config["linux"].as_object_mut().unwrap().remove("seccomp");
        }
        for m in &muts {
            apply(&mut config, m);
        }
        let mut bytes = serde_json::to_vec_pretty(&config).unwrap();
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len() + 1));
        }
        load_bytes(&bytes);
    }

    /// A NUL byte in any string of a valid config (the kernel would end the string there) is
    /// refused in one line, wherever it is.
    #[test]
    fn a_nul_in_any_string_of_a_valid_config_is_refused(pick in any::<Index>(), at in any::<Index>()) {
        let mut config = valid_config();
        let mut ptrs = Vec::new();
        pointers(&config, String::new(), &mut ptrs);
        ptrs.retain(|p| config.pointer(p).is_some_and(Value::is_string));
        let p = ptrs[pick.index(ptrs.len())].clone();
        let Some(Value::String(s)) = config.pointer_mut(&p) else { unreachable!() };
        let mut chars: Vec<char> = s.chars().collect();
        chars.insert(at.index(chars.len() + 1), '\0');
        *s = chars.into_iter().collect();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
        let e = spec::load(dir.path()).expect_err(&p).to_string();
        prop_assert!(e.contains("NUL") && e.lines().count() == 1, "{}: {}", p, e);
    }

    #[test]
    fn parse_fd_mapping_accepts_exactly_two_non_negative_fds(s in "\\PC{0,12}|[0-9+-]{0,6}:[0-9+-]{0,6}") {
        match parse_fd_mapping(&s) {
            Ok((m, n)) => {
                prop_assert!(m >= 0 && n >= 0, "{s:?} -> {m}:{n}");
                let (a, b) = s.split_once(':').unwrap();
                prop_assert_eq!((a.parse::<i32>().ok(), b.parse::<i32>().ok()), (Some(m), Some(n)));
            }
            Err(e) => assert_one_line(&e, &s),
        }
    }

    #[test]
    fn parse_fd_mapping_round_trips(m in 0..=i32::MAX, n in 0..=i32::MAX) {
        prop_assert_eq!(parse_fd_mapping(&format!("{m}:{n}")), Ok((m, n)));
    }

    #[test]
    fn validate_id_accepts_runc_ids_but_dot_names(s in "\\PC{0,16}|[a-zA-Z0-9+._/-]{0,8}|[a-z]{1020,1030}") {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "+-._".contains(c);
        // runc's rule, less names starting with '.': nsboot's own in the state root.
        let want = !s.is_empty() && s.len() <= 1024 && !s.starts_with('.')
            && s.chars().all(allowed);
        match validate_id(&s) {
            Ok(()) => prop_assert!(want, "{s:?} accepted"),
            Err(e) => {
                prop_assert!(!want, "{s:?} refused: {e}");
                assert_one_line(&e, &s);
            }
        }
    }
}

#[test]
fn valid_config_loads() {
    // The base of the mutations is itself valid: mutations start from the accepted path.
    load_bytes(&serde_json::to_vec(&valid_config()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec(&valid_config()).unwrap(),
    )
    .unwrap();
    spec::load(dir.path()).unwrap();
}
