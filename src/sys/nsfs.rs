//! Namespace files (nsfs): what type of namespace an fd names, and which user namespace owns
//! it (the ioctls of linux/nsfs.h).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::Errno;

/// NS_GET_NSTYPE: the CLONE_NEW* flag of the namespace `fd` names. ENOTTY: not a namespace.
pub fn ns_type(fd: BorrowedFd) -> Result<nix::sched::CloneFlags, Errno> {
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_NSTYPE) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(nix::sched::CloneFlags::from_bits_retain(r))
}

/// NS_GET_USERNS: the user namespace that owns the namespace `fd` names (EPERM when it lies
/// outside the caller's, EINVAL for a user namespace's own, which has a parent instead).
pub fn ns_owner(fd: BorrowedFd) -> Result<OwnedFd, Errno> {
    // SAFETY: NS_GET_USERNS takes no argument and returns a new fd, ours alone.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_USERNS) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just created this fd for us.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn own_net_namespace_is_of_type_net_and_a_file_is_no_namespace() {
        let net = std::fs::File::open("/proc/self/ns/net").unwrap();
        assert_eq!(
            ns_type(net.as_fd()),
            Ok(nix::sched::CloneFlags::CLONE_NEWNET)
        );
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(ns_type(file.as_fd()), Err(Errno(libc::ENOTTY)));
    }
}
