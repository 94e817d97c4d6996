//! The lifecycle commands that act through the container's cgroup: pause and resume, update,
//! events, kill --all, delete --force, exec joining it.
