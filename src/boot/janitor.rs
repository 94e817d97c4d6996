//! The supervisor's duties to a caller that may die: a foreground run's [`Janitor`] removes the
//! state its killed caller left, and `create`'s supervisor waits for the word that its state
//! is written ([`Created`]).

use std::os::fd::{AsFd, AsRawFd};

use crate::protocol::{Created, Janitor};

impl Janitor {
    fn caller_died(&self) -> bool {
        crate::sys::pidfd_exited(self.caller.as_fd())
    }
    /// Removes the state when the caller can no longer do it. `suspect`: the supervisor
    /// stopped because the caller's end closed; a dying process closes its files before its
    /// pidfd reports the exit, so give that a moment instead of asking once.
    /// Returns whether the caller is dead.
    pub(super) fn clean_if_orphaned(&self, suspect: bool) -> bool {
        let dead = if suspect {
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            let mut fds = [PollFd::new(self.caller.as_fd(), PollFlags::POLLIN)];
            matches!(poll(&mut fds, PollTimeout::from(2000u16)), Ok(n) if n > 0)
        } else {
            self.caller_died()
        };
        let mut b = [0u8; 1];
        let ours = matches!(nix::unistd::read(self.created.as_raw_fd(), &mut b), Ok(1));
        if dead && ours {
            crate::state::remove_at(self.state_root.as_fd(), &self.id);
        }
        if dead {
            let private = crate::state::private_name(&self.id, self.caller_pid);
            crate::state::remove_at(self.state_root.as_fd(), &private);
        }
        dead
    }
}

impl Created {
    /// Waits for the word; false when the caller died first. The lock goes either way.
    pub(super) fn wait(self) -> bool {
        let mut b = [0u8; 1];
        loop {
            match nix::unistd::read(self.confirmed.as_raw_fd(), &mut b) {
                Err(nix::errno::Errno::EINTR) => continue,
                Ok(1) => return true,
                _ => return false,
            }
        }
    }
}
