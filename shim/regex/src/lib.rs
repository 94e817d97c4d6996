//! `regex` for oci-spec, backed by regex-lite: no Unicode tables (see Cargo.toml).
//! `\d` matches ASCII digits only, which is what a CPU list holds.

pub use regex_lite::*;
