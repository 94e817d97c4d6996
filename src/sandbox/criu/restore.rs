//! Restore: nsboot's shape rebuilt around CRIU. The caller clones a supervisor as pid 1 of a
//! new pid namespace (with a mount namespace of its own, where it mounts that namespace's
//! /proc for CRIU). The supervisor runs `criu restore --restore-detached`, which re-creates
//! the application's namespaces (user, pid nested below the supervisor's, mount, net, ipc,
//! uts) from the images; once CRIU exits the application is the supervisor's child, as after
//! `create`+`start`. The supervisor reaps until the application is gone and exits with its
//! status; killing it (`delete --force`) ends its pid namespace and every process in it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;

use super::tty::{self, Console};
use super::{joined, run, CriuError, Record, Shared, RECORD};
use crate::spec::Spec;
use crate::state;
use crate::sys::{self, Cloned};

/// runc's restore flags.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub image_path: PathBuf,
    pub shared: Shared,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    /// Where the new terminal's master goes, when the checkpoint has a terminal.
    pub console_socket: Option<PathBuf>,
    /// The container's cgroup as a systemd scope (`--systemd-cgroup`), as on create.
    pub systemd_cgroup: bool,
}

fn err(id: &str, why: impl Into<String>) -> CriuError {
    CriuError::Restore {
        id: id.into(),
        why: why.into(),
    }
}

/// Restores the container `o.id` from `o.image_path`; returns the exit status to end with
/// (0 once restored with --detach, else the application's).
pub fn restore(
    state_root: &Path,
    spec: &Spec,
    rootfs: &Path,
    o: &RestoreOptions,
) -> Result<i32, CriuError> {
    let id = o.id.as_str();
    let criu = super::find_criu().ok_or(CriuError::Missing)?;
    o.shared.check()?;
    let rec_path = o.image_path.join(RECORD);
    let record: Record = std::fs::read(&rec_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            err(
                id,
                format!(
                    "{} is missing or unreadable: the image path must hold an nsboot checkpoint",
                    rec_path.display()
                ),
            )
        })?;
    let console = Console::open(id, record.tty.as_deref(), o.console_socket.as_deref())?;
    let work = o.shared.work_dir(&o.image_path);
    std::fs::create_dir_all(&work)
        .map_err(|e| err(id, format!("work directory {}: {e}", work.display())))?;

    let mut cmd = Command::new(criu);
    cmd.arg("restore")
        .arg("--images-dir")
        .arg(&o.image_path)
        .arg("--work-dir")
        .arg(&work)
        .args(["--log-file", "restore.log", "-v4", "--restore-detached"])
        .arg("--root")
        .arg(rootfs);
    o.shared.add_to(&mut cmd, record.shell_job);
    // The application's stdio from outside (an engine's pipes, a file) is this command's own
    // stdio now, as runc hands it over.
    let mut inherited: Vec<&String> = Vec::new();
    for (fd, key) in record.stdio.iter().enumerate() {
        if !key.is_empty() && !inherited.contains(&key) {
            cmd.arg("--inherit-fd").arg(format!("fd[{fd}]:{key}"));
            inherited.push(key);
        }
    }
    if let Some(key) = &record.tty {
        cmd.arg("--inherit-fd")
            .arg(format!("fd[{}]:{key}", tty::INHERITED));
    }

    // Namespaces joined by path at dump, left out of the images: the supervisor joins the
    // spec's before CRIU runs, and CRIU restores the application inside it.
    let mut ns_fds = Vec::new();
    for ns in &record.external_ns {
        ns_fds.push(joined::open_spec(spec, *ns).map_err(|why| err(id, why))?);
    }
    // Their sysfs and mqueue: mounted by the supervisor once inside them, bound by CRIU.
    let shown =
        joined::Shown::new(&work, &record.external_ns, &record.mounts).map_err(|e| err(id, e))?;

    // The spec's cgroup, made as on create: the supervisor joins it before CRIU runs, so
    // that the restored tree lands in it, and CRIU leaves cgroups alone (`ignore`), as runc
    // restores into the cgroup it made. The spec's cgroup mount becomes, in this copy, binds
    // of its directories: the sources of the external mounts CRIU found there.
    let mut view = spec.clone();
    let made = crate::sandbox::launch::make_cgroup(&mut view, id, o.systemd_cgroup)
        .map_err(|e| err(id, e.to_string()))?;
    let (cg, procs) = match made {
        Some((cg, procs)) => (Some(cg), procs),
        None => (None, Vec::new()),
    };
    let drop_cgroup = || {
        if let Some(cg) = &cg {
            let _ = cg.remove();
        }
        // With them, what CRIU was to bind (the supervisor removes it once CRIU is done).
        shown.remove();
    };
    for m in &record.mounts {
        let Some(src) = shown.source(m).or_else(|| external_source(&view, m)) else {
            drop_cgroup();
            return Err(err(
                id,
                format!(
                    "the external mount {} ({} {}) has no source in the bundle's config.json",
                    m.dest, m.fstype, m.root
                ),
            ));
        };
        cmd.arg("--ext-mount-map")
            .arg(format!("{}:{}", m.dest, src));
    }
    match (&o.shared.manage_cgroups_mode, &cg) {
        (Some(m), Some(c)) if m != "ignore" => {
            drop_cgroup();
            return Err(err(id, format!("--manage-cgroups-mode {m}: nsboot restores into the cgroup the spec asks for ({}), CRIU's mode is ignore: drop the flag", c.name)));
        }
        (_, Some(_)) => cmd.arg("--manage-cgroups=ignore"),
        (Some(m), None) => cmd.arg(format!("--manage-cgroups={m}")),
        (None, None) => cmd.arg("--manage-cgroups"),
    };

    let entry = match state::create(state_root, id) {
        Ok(e) => e,
        Err(e) => {
            drop_cgroup();
            return Err(err(id, e.to_string()));
        }
    };
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| err(id, format!("creating a pipe: {e}")))?;
    let cloned = sys::clone_process(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS)
        .map_err(|e| err(id, format!("cloning the supervisor: {e}")));
    let (pid, pidfd) = match cloned {
        Ok(Cloned::Child) => {
            let tty = console.as_ref().map(Console::slave);
            supervise(Supervised {
                cmd,
                id,
                work: &work,
                report: report_w,
                procs,
                joined: ns_fds,
                shown: &shown,
                tty,
            })
        }
        Ok(Cloned::Parent { pid, pidfd }) => (pid, pidfd),
        Err(e) => {
            entry.remove();
            drop_cgroup();
            return Err(e);
        }
    };
    drop(report_w);
    drop(procs);
    let mut report = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::fs::File::from(report_r), &mut report);
    let restored = match report.is_empty() {
        true => Ok(()),
        false => Err(serde_json::from_slice(&report)
            .unwrap_or_else(|_| err(id, String::from_utf8_lossy(&report).into_owned()))),
    };
    // Restored: the engine gets the terminal's master (the application may have written to
    // it meanwhile: the pty holds it).
    let sent = restored.and_then(|()| match console {
        Some(c) => c.send(id).map_err(CriuError::from),
        None => Ok(()),
    });
    // As after create: the state's pid is the application's (the supervisor's only child once
    // CRIU has exited), and so is the pid file's, as runc writes its init's.
    let saved = sent.and_then(|()| {
        let app = state::lifecycle::app_pid(pid.as_raw()).ok_or_else(|| {
            err(
                id,
                "the restored application is gone (see the images' restore.log)",
            )
        })?;
        let mut st = state::State::new(
            id,
            "running",
            app,
            o.bundle.clone(),
            rootfs.into(),
            spec.annotations().clone(),
        );
        st.supervisor = pid.as_raw();
        st.cgroup = cg.clone();
        entry.save(&st).map_err(|e| err(id, e.to_string()))?;
        match &o.pid_file {
            Some(p) => std::fs::write(p, app.to_string())
                .map_err(|e| err(id, format!("writing the pid file {}: {e}", p.display()))),
            None => Ok(()),
        }
    });
    if let Err(e) = saved {
        let _ = sys::pidfd_signal(pidfd.as_fd(), libc::SIGKILL);
        let _ = sys::pidfd_wait(pidfd.as_fd());
        entry.remove();
        drop_cgroup();
        return Err(e);
    }
    drop(entry);
    if o.detach {
        return Ok(0);
    }
    let code = sys::pidfd_wait(pidfd.as_fd())
        .map_err(|e| err(id, format!("waiting for the supervisor: {e}")))?;
    // In the foreground, as runc's restore (and `run`): the container is removed once it has
    // ended, unless another command removed it and the id is someone else's by now.
    if let Ok(entry) = state::open(state_root, id) {
        if entry.load().is_ok_and(|st| st.supervisor == pid.as_raw()) {
            entry.remove();
            drop_cgroup();
        }
    }
    Ok(code)
}

/// The host path an external mount is bound from: the host's device nodes (nsboot binds
/// /dev/null & co. and masks files with /dev/null), or the source of the spec's last mount
/// at that place (in `view`, the cgroup mount is binds of the container's cgroup).
fn external_source(view: &Spec, m: &super::External) -> Option<String> {
    if m.fstype == "devtmpfs" {
        return Some(format!("/dev{}", m.root));
    }
    view.mounts()
        .iter()
        .flatten()
        .rev()
        .find(|sm| sm.destination().to_str() == Some(m.dest.as_str()))
        .and_then(|sm| sm.source().as_ref())
        .filter(|s| s.is_absolute())
        .map(|s| s.to_string_lossy().into_owned())
}

/// The supervisor's failure, as the serialised error `restore` reads from the report pipe.
fn report_and_exit(report: &OwnedFd, e: CriuError) -> ! {
    let _ = nix::unistd::write(report, &serde_json::to_vec(&e).unwrap_or_default());
    std::process::exit(125)
}

/// What the restore's supervisor is handed: CRIU's command, the pipe its failure is reported
/// on, the container's cgroup.procs, the namespaces joined by path with their mounts, and the
/// new terminal's slave.
struct Supervised<'a> {
    cmd: Command,
    id: &'a str,
    work: &'a Path,
    report: OwnedFd,
    procs: Vec<OwnedFd>,
    joined: Vec<(super::ExternalNs, OwnedFd)>,
    shown: &'a joined::Shown,
    tty: Option<BorrowedFd<'a>>,
}

/// The supervisor, pid 1 of its pid namespace: /proc of that namespace for CRIU, CRIU's
/// restore (its failure reported on `report` as a serialised error), then reaping until the
/// application is gone. Never returns.
fn supervise(s: Supervised<'_>) -> ! {
    let Supervised {
        mut cmd,
        id,
        work,
        report,
        procs,
        joined,
        shown,
        tty,
    } = s;
    // Into the container's cgroup first (CRIU and what it restores are born there).
    if let Err(e) = crate::cgroup::join(procs) {
        let why = format!("the supervisor joining the container's cgroup: {e}");
        report_and_exit(&report, err(id, why));
    }
    // Into the namespaces the container joined (CRIU restores into its own ones).
    for (ns, fd) in joined {
        if let Err(e) = nix::sched::setns(fd, ns.flag()) {
            let name = ns.proc_name();
            let why = format!("the supervisor joining the {name} namespace to restore into: {e}");
            report_and_exit(&report, err(id, why));
        }
    }
    // The caller's fds (the state lock among them) are not the supervisor's to keep; the
    // report pipe moves to fd 3, a new terminal's slave to fd 4 (`tty::INHERITED`), which CRIU
    // inherits (dup2 clears CLOEXEC). The slave is first put out of their way.
    let high = tty.map(|t| nix::fcntl::fcntl(t.as_raw_fd(), nix::fcntl::F_DUPFD_CLOEXEC(10)));
    let fd = report.as_raw_fd();
    let moved = nix::unistd::dup2(fd, 3).is_ok()
        && match high {
            None => true,
            Some(Ok(h)) => nix::unistd::dup2(h, tty::INHERITED).is_ok(),
            Some(Err(_)) => false,
        };
    std::mem::forget(report);
    let keep = if tty.is_some() { tty::INHERITED } else { 3 };
    if !moved || sys::close_range(keep as u32 + 1, u32::MAX).is_err() {
        std::process::exit(125);
    }
    // SAFETY: fd 3 is the report pipe's write end, duplicated above and owned by nobody else.
    let report = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(3) };
    // SAFETY: fd 4, when there is a terminal, is its slave's duplicate made above, nobody else's.
    let slave =
        tty.map(|_| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(tty::INHERITED) });
    let fail = |e: CriuError| -> ! { report_and_exit(&report, e) };
    let private = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    );
    let proc_ = mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    );
    if let Err(e) = private.and(proc_) {
        fail(err(
            id,
            format!("mounting /proc for CRIU in the supervisor: {e}"),
        ));
    }
    // The joined namespaces' sysfs and mqueue, in this mount namespace only (private by now).
    if let Err(e) = shown.mount() {
        fail(err(id, e));
    }
    if let Err(e) = run(
        id,
        "restore",
        std::mem::replace(&mut cmd, Command::new("true")),
        &work.join("restore.log"),
    ) {
        fail(e);
    }
    drop(report);
    // The restored application holds the terminal: the supervisor's copy would keep it from
    // hanging up when the application ends.
    drop(slave);
    // CRIU bound them into the container: the directories are not the supervisor's to keep.
    shown.remove();
    // Reap everything; the application is the last to go (pid 1 of its own namespace).
    let mut status = 0;
    loop {
        match nix::sys::wait::wait() {
            Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => status = c,
            Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => status = 128 + s as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    std::process::exit(status)
}
