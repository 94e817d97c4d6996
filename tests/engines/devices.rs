//! Device access through the engines (podman and Docker share the flag): `--device
//! HOST:CONTAINER:r` makes a node the container may read but not write, which only the devices
//! cgroup can hold to (a mount cannot make a node read-only). Runc beside nsboot.

use crate::cli::{cli, Cli};
use crate::harness::{expect_stdout, status, Runtime, Step};
use crate::image::IMAGE;

/// /dev/kmsg: on every host, opened for writing by anyone (reading needs CAP_SYSLOG).
const PROBE: &str = "if (exec 3>/dev/kmsg) 2>/dev/null; then echo w=ok; else echo w=denied; fi";

pub fn read_only_device_denies_writes<E: Cli>(e: &E, rt: Runtime, _: &str) -> Step {
    let args = ["run", "--rm", "--device", "/dev/kmsg:/dev/kmsg:r", IMAGE];
    let out = cli(e, rt, &[&args[..], &["sh", "-c", PROBE]].concat());
    status(&out, 0, "run --device /dev/kmsg:/dev/kmsg:r")?;
    expect_stdout(&out, "w=denied\n", "writing a read-only device")
}

pub fn read_write_device_takes_writes<E: Cli>(e: &E, rt: Runtime, _: &str) -> Step {
    let args = ["run", "--rm", "--device", "/dev/kmsg:/dev/kmsg:rw", IMAGE];
    let out = cli(e, rt, &[&args[..], &["sh", "-c", PROBE]].concat());
    status(&out, 0, "run --device /dev/kmsg:/dev/kmsg:rw")?;
    expect_stdout(&out, "w=ok\n", "writing a read-write device")
}
