//! Reading the state store without locks: `state`, `list`, `kill` and `exec` never wait for a
//! foreground `run`, which holds its lock for the container's whole life.

use std::fs;
use std::path::Path;

use super::{files, io, missing_or_io, validate_id, State, StateError};

/// Reads `id`'s state.json without taking its lock: readers (state, list, kill, exec) never
/// wait for a foreground `run`, which holds the lock for the container's whole life.
pub fn load(root: &Path, id: &str) -> Result<State, StateError> {
    validate_id(id)?;
    let (path, _) = files(&root.join(id));
    let bytes = fs::read(&path).map_err(|e| missing_or_io(root, id, &path, e))?;
    let st = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
        id: id.into(),
        path: super::shown(&path),
        why: e.to_string(),
    })?;
    Ok(with_started(&root.join(id), st))
}

/// The marker `start` leaves in a container's directory.
pub(super) const STARTED: &str = "started";

/// A created container whose directory holds the start marker is running (or has run).
pub(super) fn with_started(dir: &Path, mut st: State) -> State {
    if st.status == "created" && dir.join(STARTED).exists() {
        st.status = "running".into();
    }
    st
}

/// The ids in the state root that have a state: a foreground run's file or a directory with
/// a state.json. Sorted.
pub fn list(root: &Path) -> Result<Vec<String>, StateError> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(root, e)),
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| {
            e.file_type().is_ok_and(|t| t.is_file()) || e.path().join("state.json").is_file()
        })
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .collect();
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_marker_turns_created_into_running() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::new("x", "created", 1, "/b".into(), "/r".into(), None);
        assert_eq!(with_started(dir.path(), st.clone()).status, "created");
        fs::write(dir.path().join(STARTED), "").unwrap();
        assert_eq!(with_started(dir.path(), st).status, "running");
        let stopped = State::new("x", "stopped", 1, "/b".into(), "/r".into(), None);
        assert_eq!(with_started(dir.path(), stopped).status, "stopped");
    }
}
